// byte_stream::write_now over every real transport: it takes what fits at once and never waits,
// and what it took and what async_write sends after it arrive once, in order. Streams that cannot
// write this way (a serial port, memory links) say 0, and a session uses async_write.
#include <gtest/gtest.h>

#include "support/net_pair.hpp"
#include "support/session_checks.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;

struct open_streams {
    std::unique_ptr<net::byte_stream> debugger, target;
};

open_streams open_both(asio::io_context& io, net::link_pair& links) {
    open_streams s;
    links.target->async_open([&](std::error_code, std::unique_ptr<net::byte_stream> t) { s.target = std::move(t); });
    links.debugger->async_open([&](std::error_code, std::unique_ptr<net::byte_stream> d) { s.debugger = std::move(d); });
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!(s.debugger && s.target) && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
    io.restart();  // it may have run out of work, which stops it
    return s;
}

class WriteNow : public ::testing::TestWithParam<transport_kind> {};

TEST_P(WriteNow, TakesWhatFitsWithoutWaitingAndEverythingArrivesInOrder) {
    asio::io_context io;
    auto links = make_links(io, GetParam());
    auto [writer, reader] = open_both(io, *links);
    ASSERT_TRUE(writer && reader);
    const bytes small = numbered_body(1, 100);
    // The serial kind's target is an asio::serial_port on the pty's slave (its debugger side, the
    // master, is a plain descriptor).
    if (GetParam() == transport_kind::serial_pty) {
        EXPECT_EQ(reader->write_now(small), 0u) << "a serial port cannot";
    }

    bytes expected;
    const std::size_t first = writer->write_now(small);
    EXPECT_EQ(first, small.size()) << "an empty stream takes a small write whole";
    expected.insert(expected.end(), small.begin(), small.begin() + static_cast<long>(first));

    // Nobody reads yet: the stream fills, and write_now says so instead of waiting.
    const bytes chunk = numbered_body(2, 64 * 1024);
    int calls = 0;
    for (; calls < 256; ++calls) {
        const std::size_t n = writer->write_now(chunk);
        ASSERT_LE(n, chunk.size());
        expected.insert(expected.end(), chunk.begin(), chunk.begin() + static_cast<long>(n));
        if (n < chunk.size()) break;
    }
    EXPECT_LT(calls, 256) << "16 MiB and the stream never filled";

    // The rest goes the usual way, after what write_now took.
    const bytes rest = numbered_body(3, 5000);
    expected.insert(expected.end(), rest.begin(), rest.end());
    bool written = false;
    writer->async_write(rest, [&](std::error_code ec, std::size_t n) { written = !ec && n == rest.size(); });

    bytes got;
    std::vector<std::uint8_t> buffer(64 * 1024);
    std::function<void()> read = [&] {
        reader->async_read_some(buffer, [&](std::error_code ec, std::size_t n) {
            if (ec) return;
            got.insert(got.end(), buffer.begin(), buffer.begin() + static_cast<long>(n));
            if (got.size() < expected.size()) read();
        });
    };
    read();
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!(written && got.size() >= expected.size()) && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
    EXPECT_TRUE(written);
    ASSERT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected) << "bytes lost, repeated or reordered";
}

INSTANTIATE_TEST_SUITE_P(Transports, WriteNow,
                         ::testing::Values(transport_kind::tcp, transport_kind::unix_socket, transport_kind::fifo,
                                           transport_kind::serial_pty, transport_kind::shm),
                         [](const ::testing::TestParamInfo<transport_kind>& test) { return to_string(test.param); });

}  // namespace
