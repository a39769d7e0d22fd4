// Encoding writes exactly the documented bytes into the caller's buffer, or reports why not.
#include <gtest/gtest.h>

#include "kdcom/capture/errors.hpp"
#include "kdcom/transport/errors.hpp"

#include <vector>

#include "kdcom/error.hpp"
#include "kdcom/wire/encoder.hpp"

namespace {
using namespace kdcom::wire;
using bytes = std::vector<std::uint8_t>;

TEST(EncodeData, WritesHeaderBodyAndTrailer) {
    const bytes body{0x46, 0x31, 0x00, 0x00, 0xFF};
    bytes out(64, 0xEE);
    std::error_code ec;
    const std::size_t n = encode_data_packet(out, packet_type::state_manipulate, 0x80800001, body, ec);
    ASSERT_FALSE(ec);
    const bytes expected{0x30, 0x30, 0x30, 0x30, 0x02, 0x00, 0x05, 0x00, 0x01, 0x00, 0x80, 0x80,
                         0x76, 0x01, 0x00, 0x00,  // 0x46 + 0x31 + 0xFF = 0x176
                         0x46, 0x31, 0x00, 0x00, 0xFF, 0xAA};
    ASSERT_EQ(n, expected.size());
    EXPECT_EQ(bytes(out.begin(), out.begin() + static_cast<long>(n)), expected);
    EXPECT_EQ(out[n], 0xEE) << "nothing written past the packet";
}

TEST(EncodeData, MessageHeaderAndDataAreOneBodyOnTheWire) {
    const bytes header{1, 2, 3}, data{4, 5}, whole{1, 2, 3, 4, 5};
    bytes split_out(32), whole_out(32);
    std::error_code ec1, ec2;
    const auto n1 = encode_data_packet(split_out, packet_type::debug_io, initial_packet_id, header, data, ec1);
    const auto n2 = encode_data_packet(whole_out, packet_type::debug_io, initial_packet_id, whole, ec2);
    ASSERT_FALSE(ec1);
    ASSERT_FALSE(ec2);
    EXPECT_EQ(n1, n2);
    EXPECT_EQ(split_out, whole_out);
}

TEST(EncodeData, EmptyBodyIsHeaderAndTrailer) {
    bytes out(17);
    std::error_code ec;
    EXPECT_EQ(encode_data_packet(out, packet_type::trace_io, initial_packet_id, {}, ec), 17u);
    EXPECT_FALSE(ec);
    EXPECT_EQ(out[6], 0);
    EXPECT_EQ(out[12], 0);
    EXPECT_EQ(out[16], trailer_byte);
}

TEST(EncodeData, RejectsABufferOneByteShort) {
    const bytes body(100, 7);
    bytes out(data_packet_size(body.size()) - 1, 0xEE);
    std::error_code ec;
    EXPECT_EQ(encode_data_packet(out, packet_type::state_manipulate, initial_packet_id, body, ec), 0u);
    EXPECT_EQ(ec, kdcom::errc::buffer_too_small);
    EXPECT_EQ(out, bytes(out.size(), 0xEE)) << "a failed encode writes nothing";
}

TEST(EncodeData, RejectsBodiesThatByteCountCannotExpress) {
    const bytes body(65536, 0);
    bytes out(data_packet_size(body.size()));
    std::error_code ec;
    EXPECT_EQ(encode_data_packet(out, packet_type::state_manipulate, initial_packet_id, body, ec), 0u);
    EXPECT_EQ(ec, kdcom::errc::body_too_large);

    const bytes largest(65535, 1);
    EXPECT_EQ(encode_data_packet(out, packet_type::state_manipulate, initial_packet_id, largest, ec),
              data_packet_size(65535));
    EXPECT_FALSE(ec);
}

TEST(EncodeData, RejectsControlAndUnknownTypes) {
    bytes out(32);
    std::error_code ec;
    for (auto t : {packet_type::acknowledge, packet_type::reset, packet_type::unused,
                   packet_type::poll_breakin, packet_type::max}) {
        EXPECT_EQ(encode_data_packet(out, t, initial_packet_id, {}, ec), 0u);
        EXPECT_EQ(ec, kdcom::errc::not_a_data_type);
    }
}

TEST(EncodeControl, WritesSixteenBytesWithZeroCountAndChecksum) {
    bytes out(16);
    std::error_code ec;
    ASSERT_EQ(encode_control_packet(out, packet_type::reset, 0xDEADBEEF, ec), 16u);
    ASSERT_FALSE(ec);
    const bytes expected{0x69, 0x69, 0x69, 0x69, 0x06, 0x00, 0x00, 0x00,
                         0xEF, 0xBE, 0xAD, 0xDE, 0x00, 0x00, 0x00, 0x00};
    EXPECT_EQ(out, expected);
}

TEST(EncodeControl, RejectsDataTypesAndShortBuffers) {
    bytes out(16);
    std::error_code ec;
    EXPECT_EQ(encode_control_packet(out, packet_type::state_manipulate, 0, ec), 0u);
    EXPECT_EQ(ec, kdcom::errc::not_a_control_type);
    bytes small(15);
    EXPECT_EQ(encode_control_packet(small, packet_type::acknowledge, 0, ec), 0u);
    EXPECT_EQ(ec, kdcom::errc::buffer_too_small);
}

TEST(ErrorCodes, BelongToTheKdcomCategoryWithReadableMessages) {
    const std::error_code ec = kdcom::errc::bad_checksum;
    EXPECT_STREQ(ec.category().name(), "kdcom");
    EXPECT_EQ(ec.message(), "bad checksum");
    for (int v = 1; v <= static_cast<int>(kdcom::errc::shm_no_ready); ++v) {
        const bool retired = v >= 19 && v <= 22;  // the capture errors, now in their own category
        EXPECT_EQ(std::error_code(v, kdcom::error_category()).message() == "unknown kdcom error", retired) << v;
    }
}

TEST(ErrorCodes, EachLayerHasItsCategorySoACallerCanTellThemApart) {
    const std::error_code capture = kdcom::capture::capture_errc::torn;
    const std::error_code transport = kdcom::transport::transport_errc::invalid_address;
    const std::error_code protocol = kdcom::errc::bad_checksum;
    EXPECT_STREQ(capture.category().name(), "kdcom.capture");
    EXPECT_STREQ(transport.category().name(), "kdcom.transport");
    EXPECT_NE(capture.category(), protocol.category());
    EXPECT_NE(transport.category(), protocol.category());
    EXPECT_EQ(capture.message(), "capture torn: it ends inside a block");
    for (int v = 1; v <= static_cast<int>(kdcom::transport::transport_errc::cannot_listen); ++v)
        EXPECT_NE(std::error_code(v, kdcom::transport::transport_category()).message(), "unknown transport error") << v;

    const kdcom::failure f{kdcom::transport::transport_errc::invalid_address, "port 'x' is not a number"};
    EXPECT_TRUE(f);
    EXPECT_EQ(f.message(), "port 'x' is not a number");
    EXPECT_EQ((kdcom::failure{capture, ""}).message(), capture.message());
    EXPECT_FALSE(kdcom::failure{});
}
}  // namespace
