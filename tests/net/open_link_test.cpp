// open_link says why it could not make a link with a code a program can test, apart from the text
// a person reads: an address the parser refused, a listener that could not be bound and a
// transport this platform lacks are three different codes.
#include <gtest/gtest.h>

#include <asio/io_context.hpp>

#include "kdcom/net/open_link.hpp"

namespace {
using namespace kdcom;
using transport::transport_errc;

transport::address parsed(const std::string& text) {
    failure why;
    auto a = transport::parse_address(text, why);
    EXPECT_TRUE(a) << why.message();
    return a.value_or(transport::address{});
}

TEST(OpenLink, AListenerThatCannotBeBoundSaysSoByItsCodeAndNamesTheSocket) {
    asio::io_context io;
    failure why;
    const auto link = net::open_link(io.get_executor(), parsed("unix-listen:///nonexistent-dir/kdcom.sock"), role::target, why);
    EXPECT_FALSE(link);
    EXPECT_EQ(why.code, transport_errc::cannot_listen);
    EXPECT_NE(why.detail.find("cannot listen on unix-listen:///nonexistent-dir/kdcom.sock: "), std::string::npos)
        << why.detail;
}

TEST(OpenLink, ATransportThisPlatformLacksHasItsOwnCode) {
    asio::io_context io;
    failure why;
    EXPECT_FALSE(net::open_link(io.get_executor(), parsed("pipe:\\\\.\\pipe\\kd"), role::debugger, why));
    EXPECT_EQ(why.code, transport_errc::not_on_this_platform);
    EXPECT_NE(why.detail.find("use unix:// or unix-listen://"), std::string::npos) << why.detail;
}

TEST(OpenLink, AnAddressTheParserRefusesIsNotABindFailure) {
    failure why;
    EXPECT_FALSE(transport::parse_address("tcp-listen://:99999", why));
    EXPECT_EQ(why.code, transport_errc::invalid_address);
    EXPECT_NE(why.code, make_error_code(transport_errc::cannot_listen));
}

TEST(OpenLink, ASuccessLeavesNoFailure) {
    asio::io_context io;
    failure why{transport_errc::cannot_listen, "left over"};
    EXPECT_TRUE(net::open_link(io.get_executor(), parsed("tcp-listen://127.0.0.1:0"), role::target, why));
    EXPECT_FALSE(why);
}

}  // namespace
