// Which types travel under which leader, and their names.
#include <gtest/gtest.h>

#include "kdcom/wire/packet_type.hpp"

namespace {
using namespace kdcom::wire;

TEST(PacketType, ControlTypesAreAcknowledgeResendReset) {
    for (unsigned v = 0; v <= 0xFFFF; ++v) {
        const auto t = static_cast<packet_type>(v);
        EXPECT_EQ(is_control_type(t), v == 4 || v == 5 || v == 6) << v;
    }
}

TEST(PacketType, DataTypesExcludeUnusedPollBreakinControlAndUnknown) {
    for (unsigned v = 0; v <= 0xFFFF; ++v) {
        const auto t = static_cast<packet_type>(v);
        const bool expected = v == 1 || v == 2 || v == 3 || v == 7 || v == 9 || v == 10 || v == 11;
        EXPECT_EQ(is_data_type(t), expected) << v;
    }
}

TEST(PacketType, NamesFollowWindowsHeaders) {
    EXPECT_EQ(packet_type_name(packet_type::state_change64), "KD_STATE_CHANGE64");
    EXPECT_EQ(packet_type_name(packet_type::state_manipulate), "KD_STATE_MANIPULATE");
    EXPECT_EQ(packet_type_name(packet_type::acknowledge), "KD_ACKNOWLEDGE");
    EXPECT_EQ(packet_type_name(packet_type::file_io), "KD_FILE_IO");
    EXPECT_EQ(packet_type_name(packet_type::max), "UNKNOWN");
    EXPECT_EQ(packet_type_name(static_cast<packet_type>(0x3030)), "UNKNOWN");
}
}  // namespace
