// The 16-byte header is little-endian field by field, whatever the host's byte order.
#include <gtest/gtest.h>

#include <array>

#include "kdcom/wire/header.hpp"

namespace {
using namespace kdcom::wire;

// The header of the shared x64 breakpoint vector (syzkaller pkg/kd exceptionPacket).
constexpr std::array<std::uint8_t, 16> breakpoint_header{0x30, 0x30, 0x30, 0x30, 0x07, 0x00, 0xf0, 0x00,
                                                          0x00, 0x08, 0x80, 0x80, 0xe6, 0x1f, 0x00, 0x00};

TEST(Header, LoadsEveryFieldLittleEndian) {
    const packet_header h = load_header(breakpoint_header);
    EXPECT_EQ(h.leader, data_packet_leader);
    EXPECT_EQ(h.type, packet_type::state_change64);
    EXPECT_EQ(h.byte_count, 0xF0);
    EXPECT_EQ(h.id, initial_packet_id | sync_packet_id);
    EXPECT_EQ(h.checksum, 0x1FE6u);
    EXPECT_TRUE(h.is_data());
    EXPECT_FALSE(h.is_control());
}

TEST(Header, StoresFieldsAtTheirOffsetsLeastSignificantByteFirst) {
    std::array<std::uint8_t, 16> out{};
    store_header({0x69696969, packet_type::acknowledge, 0x0102, 0x80800001, 0xA1B2C3D4}, out);
    const std::array<std::uint8_t, 16> expected{0x69, 0x69, 0x69, 0x69, 0x04, 0x00, 0x02, 0x01,
                                                0x01, 0x00, 0x80, 0x80, 0xD4, 0xC3, 0xB2, 0xA1};
    EXPECT_EQ(out, expected);
}

TEST(Header, StoreThenLoadIsIdentity) {
    const packet_header h{data_packet_leader, packet_type::file_io, 4000, 0xDEADBEEF, 0x0001F3A0};
    std::array<std::uint8_t, 16> out{};
    store_header(h, out);
    EXPECT_EQ(load_header(out), h);
}

TEST(Header, HoldsTypesThatHaveNoName) {
    std::array<std::uint8_t, 16> raw = breakpoint_header;
    raw[4] = 0x34;
    raw[5] = 0x12;
    EXPECT_EQ(static_cast<std::uint16_t>(load_header(raw).type), 0x1234);
}
}  // namespace
