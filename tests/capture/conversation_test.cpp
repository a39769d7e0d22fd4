// The conversation in a capture: each data packet once, in the order it went, retransmissions
// folded, everything that is only protocol left out.
#include <gtest/gtest.h>

#include "kdcom/capture/conversation.hpp"
#include "support/decode_helpers.hpp"

namespace {

using namespace kdcom;
using namespace kdcom::test;
using capture::flow;
using wire::packet_type;

struct conversation_run {
    capture::conversation c;
    std::uint64_t t = 0;
    void put(flow f, const bytes& b) { c.push({++t, f, b}); }
    std::vector<capture::conversation_packet> all() {
        c.finish();
        std::vector<capture::conversation_packet> out;
        while (auto p = c.next()) out.push_back(std::move(*p));
        return out;
    }
};

const bytes request = {1, 2, 3, 4}, reply = {5, 6, 7};

TEST(Conversation, DataPacketsComeOutInTheOrderTheyWentWithoutTheProtocol) {
    conversation_run r;
    r.put(flow::debugger_to_target, control_frame(packet_type::reset, 0));
    r.put(flow::target_to_debugger, control_frame(packet_type::reset, 0));
    r.put(flow::debugger_to_target, data_frame(packet_type::state_manipulate, 0x80800000, request));
    r.put(flow::target_to_debugger, control_frame(packet_type::acknowledge, 0x80800000));
    r.put(flow::target_to_debugger, data_frame(packet_type::state_manipulate, 0x80800000, reply));
    r.put(flow::debugger_to_target, control_frame(packet_type::acknowledge, 0x80800000));
    const auto packets = r.all();
    ASSERT_EQ(packets.size(), 2u);
    EXPECT_EQ(packets[0].direction, flow::debugger_to_target);
    EXPECT_EQ(packets[0].body, request);
    EXPECT_EQ(packets[0].type, packet_type::state_manipulate);
    EXPECT_EQ(packets[0].time_ns, 3u);
    EXPECT_EQ(packets[1].direction, flow::target_to_debugger);
    EXPECT_EQ(packets[1].body, reply);
}

TEST(Conversation, RetransmissionsBeforeTheAcknowledgementAreFolded) {
    conversation_run r;
    r.put(flow::debugger_to_target, data_frame(packet_type::state_manipulate, 0x80800000, request));
    r.put(flow::debugger_to_target, data_frame(packet_type::state_manipulate, 0x80800000, request));  // ACK lost
    r.put(flow::target_to_debugger, control_frame(packet_type::reset, 0));
    // After a reset the packet goes again under the initial id.
    r.put(flow::debugger_to_target, data_frame(packet_type::state_manipulate, 0x80800000 ^ 1, request));
    r.put(flow::target_to_debugger, control_frame(packet_type::acknowledge, 0x80800000 ^ 1));
    // The same request again, after the acknowledgement: a new packet.
    r.put(flow::debugger_to_target, data_frame(packet_type::state_manipulate, 0x80800000, request));
    const auto packets = r.all();
    ASSERT_EQ(packets.size(), 2u);
    EXPECT_EQ(r.c.retransmissions_folded(), 2u);
}

TEST(Conversation, SplitRecordsGarbageAndBreakinsChangeNothing) {
    conversation_run r;
    const bytes frame = data_frame(packet_type::debug_io, 0x80800000, reply);
    r.put(flow::target_to_debugger, {0x00, 0x17, 0x30});
    r.put(flow::target_to_debugger, bytes(frame.begin(), frame.begin() + 7));
    r.put(flow::debugger_to_target, {0x62});
    r.put(flow::target_to_debugger, bytes(frame.begin() + 7, frame.end()));
    // A packet the capture cut off is not part of it.
    r.put(flow::debugger_to_target, bytes(frame.begin(), frame.begin() + 9));
    const auto packets = r.all();
    ASSERT_EQ(packets.size(), 1u);
    EXPECT_EQ(packets[0].body, reply);
    EXPECT_EQ(packets[0].time_ns, 4u) << "the time of the record that completed it";
}

}  // namespace
