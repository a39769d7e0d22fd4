// Packet ids: INITIAL/SYNC, the alternating bit, ACKs echo the id, duplicates are acknowledged
// again but not delivered, anything else is answered with RESEND.
#include <gtest/gtest.h>

#include "support/endpoint_harness.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using wire::packet_type;

TEST(PacketIds, ABootingTargetSendsItsFirstPacketWithInitialIdAndSync) {
    endpoint_harness t(target_config());
    t.send(packet_type::state_change64, manipulate());
    const auto w = t.written();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].id, id0 | sync_bit);
}

TEST(PacketIds, SyncIsClearedAfterTheFirstAcknowledgedSendAndBitZeroAlternates) {
    endpoint_harness t(target_config());
    t.send(packet_type::state_change64, manipulate());
    t.receive_ack(id0);
    ASSERT_EQ(t.completions.size(), 1u);
    EXPECT_EQ(t.completions[0].result, events::send_completed::outcome::acknowledged);
    t.written();
    for (std::uint32_t expected : {id1, id0, id1}) {
        t.send(packet_type::debug_io, manipulate());
        const auto w = t.written();
        ASSERT_EQ(w.size(), 1u);
        EXPECT_EQ(w[0].id, expected);
        t.receive_ack(expected);
    }
    EXPECT_EQ(t.completions.size(), 4u);
}

TEST(PacketIds, ADebuggerStartsWithTheInitialIdWithoutSync) {
    endpoint_harness d(quiet_debugger_config());
    d.send(packet_type::state_manipulate, manipulate());
    EXPECT_EQ(d.written().at(0).id, id0);
}

TEST(PacketIds, AnAckForTheOtherIdDoesNotCompleteTheSend) {
    endpoint_harness d(quiet_debugger_config());
    d.send(packet_type::state_manipulate, manipulate());
    d.receive_ack(id1);
    EXPECT_TRUE(d.completions.empty());
    d.receive_ack(id0);
    EXPECT_EQ(d.completions.size(), 1u);
}

TEST(PacketIds, AnAckWithTheSyncBitSetStillMatches) {
    endpoint_harness t(target_config());
    t.send(packet_type::state_change64, manipulate());
    t.receive_ack(id0 | sync_bit);
    EXPECT_EQ(t.completions.size(), 1u);
}

TEST(PacketIds, AReceiverAcknowledgesWithTheIdWithoutSyncAndDelivers) {
    endpoint_harness d(quiet_debugger_config());
    d.receive_data(packet_type::state_change64, id0 | sync_bit, manipulate());
    const auto w = d.written();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_TRUE(w[0].control);
    EXPECT_EQ(w[0].type, packet_type::acknowledge);
    EXPECT_EQ(w[0].id, id0);
    ASSERT_EQ(d.received_bodies.size(), 1u);
    EXPECT_EQ(d.received_bodies[0], manipulate());
    EXPECT_EQ(d.received_headers[0].type, packet_type::state_change64);
}

TEST(PacketIds, ADuplicateIsAcknowledgedAgainButNotDelivered) {
    endpoint_harness t(target_config());
    t.receive_data(packet_type::state_manipulate, id0, manipulate(0x3130));
    t.receive_data(packet_type::state_manipulate, id0, manipulate(0x3130));  // our ACK was lost
    const auto w = t.written();
    ASSERT_EQ(w.size(), 2u);
    EXPECT_EQ(w[1].type, packet_type::acknowledge);
    EXPECT_EQ(w[1].id, id0);
    EXPECT_EQ(t.received_bodies.size(), 1u);
    EXPECT_EQ(t.ep.stats().duplicates_received, 1u);
    t.receive_data(packet_type::state_manipulate, id1, manipulate(0x3131));
    EXPECT_EQ(t.received_bodies.size(), 2u) << "the other id is the next packet";
}

TEST(PacketIds, AnyOtherIdIsAnsweredWithResendAndNotDelivered) {
    endpoint_harness t(target_config());
    t.receive_data(packet_type::state_manipulate, 0x12345678, manipulate());
    const auto w = t.written();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].type, packet_type::resend);
    EXPECT_TRUE(t.received_bodies.empty());
}
TEST(PacketIds, ADifferentPacketWithTheOtherIdComesFromAPeerThatRestartedItsIds) {
    // A second WinDbg with resets=0 attaches to a target the first one left: its ids start over
    // without a RESET. Its first request has the id the target just took, but is not a repeat.
    endpoint_harness t(target_config());
    t.receive_data(packet_type::state_manipulate, id0, manipulate(0x3146));
    t.receive_data(packet_type::state_manipulate, id0, manipulate(0x3146));  // a repeat: not delivered
    EXPECT_EQ(t.received_bodies.size(), 1u);
    t.receive_data(packet_type::state_manipulate, id0, manipulate(0x3130));  // a new request
    ASSERT_EQ(t.received_bodies.size(), 2u);
    EXPECT_EQ(t.received_bodies[1], manipulate(0x3130));
    t.receive_data(packet_type::state_manipulate, id1, manipulate(0x3130));  // the next one, by the count
    EXPECT_EQ(t.received_bodies.size(), 3u);
}

}  // namespace
