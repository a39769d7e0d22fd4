// Every peer quirk the reference lists is accepted, plus the implicit acknowledgement rule and
// how each side recognises a peer that restarted.
#include <gtest/gtest.h>

#include "support/endpoint_harness.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using wire::packet_type;

TEST(PeerQuirks, SyncLeftSetOnEveryPacketDeliversEachPacketOnce) {
    // VirtualKD keeps SYNC set until the next reset; its retransmissions must not be taken twice.
    endpoint_harness d(quiet_debugger_config());
    d.receive_data(packet_type::state_change64, id0 | sync_bit, manipulate(1));
    d.receive_data(packet_type::state_change64, id0 | sync_bit, manipulate(1));  // retransmission
    d.receive_data(packet_type::state_manipulate, id1 | sync_bit, manipulate(2));
    d.receive_data(packet_type::state_manipulate, id1 | sync_bit, manipulate(2));  // retransmission
    d.receive_data(packet_type::state_manipulate, id0 | sync_bit, manipulate(3));
    ASSERT_EQ(d.received_bodies.size(), 3u);
    EXPECT_EQ(d.received_bodies[2], manipulate(3));
    EXPECT_TRUE(d.resets.empty()) << "SYNC that never went away is not a restart";
}

TEST(PeerQuirks, AFirstDataPacketWithoutSyncIsAccepted) {
    // Xen's kdd starts with 0x80800000 and no SYNC; a debugger attaching late sees 0x80800001.
    for (std::uint32_t first : {id0, id1}) {
        endpoint_harness d(quiet_debugger_config());
        d.receive_data(packet_type::state_change64, first, manipulate());
        EXPECT_EQ(d.received_bodies.size(), 1u) << first;
    }
}

TEST(PeerQuirks, ATargetWorksWithADebuggerThatNeverSendsReset) {
    endpoint_harness t(target_config());
    t.send(packet_type::state_change64, manipulate(0x3030));
    t.receive_ack(id0);
    t.receive_data(packet_type::state_manipulate, id0, manipulate(0x3146));
    t.send(packet_type::state_manipulate, manipulate(0x3146));
    t.receive_ack(id1);
    EXPECT_EQ(t.completions.size(), 2u);
    EXPECT_EQ(t.received_bodies.size(), 1u);
}

TEST(PeerQuirks, ADataPacketOfAnUnexpectedTypeIsAcknowledgedAndDelivered) {
    // What to do with it is the caller's business (KdReceivePacket drops it); the link must not
    // stall on it.
    endpoint_harness t(target_config());
    t.receive_data(packet_type::file_io, id0, manipulate(0x3430));
    EXPECT_EQ(t.written().at(0).type, packet_type::acknowledge);
    ASSERT_EQ(t.received_headers.size(), 1u);
    EXPECT_EQ(t.received_headers[0].type, packet_type::file_io);
}

TEST(PeerQuirks, ANewSyncFromThePeerMeansItRestarted) {
    endpoint_harness d(quiet_debugger_config());
    d.receive_data(packet_type::state_change64, id0 | sync_bit, manipulate(1));
    d.receive_data(packet_type::state_change64, id1, manipulate(2));
    d.send(packet_type::state_manipulate, manipulate());
    d.receive_ack(id0);  // our next id is now id1
    // The target reboots: its first packet carries SYNC again.
    d.receive_data(packet_type::state_change64, id0 | sync_bit, manipulate(3));
    ASSERT_EQ(d.received_bodies.size(), 3u) << "taken although id0 was not expected";
    ASSERT_EQ(d.resets.size(), 1u);
    EXPECT_EQ(d.resets[0].why, events::peer_reset::cause::sync_bit);
    d.written();
    d.send(packet_type::state_manipulate, manipulate());
    EXPECT_EQ(d.written().at(0).id, id0) << "the rebooted target expects the initial id";
}

TEST(PeerQuirks, AfterResynchronisingTheTargetTakesTheDebuggersNextPacketWhateverItsId) {
    // Found by the endpoint fuzzer: the target restarts its ids while its pending packet is one
    // the debugger already took. The re-sent packet is a retransmission, so the debugger does not
    // resync and keeps its next id; the target must not drop that packet as a duplicate.
    endpoint_harness t(target_config());
    t.receive_data(packet_type::state_manipulate, id0, manipulate(1));  // expected is now id1
    t.send(packet_type::state_manipulate, manipulate(2));              // goes out as id0|SYNC
    t.ep.start_reset(t.now);
    t.wait(0ms);
    t.receive_data(packet_type::state_manipulate, id1, manipulate(3));  // the debugger's next
    EXPECT_EQ(t.received_bodies.size(), 2u);
}

TEST(PeerQuirks, TheBootSyncOfATargetWeNeverHeardFromDoesNotRestartOurIds) {
    // Found by the endpoint fuzzer: a debugger (resets=0) that sent first must not treat the
    // target's first, SYNC-marked packet as a restart, or it re-sends its pending packet under a
    // new id and the target takes it twice.
    endpoint_harness d(quiet_debugger_config());
    d.send(packet_type::state_manipulate, manipulate(1));
    d.receive_ack(id0);
    d.send(packet_type::state_manipulate, manipulate(2));  // id1, on its way
    d.written();
    d.receive_data(packet_type::state_change64, id0 | sync_bit, manipulate(3));
    EXPECT_TRUE(d.resets.empty());
    const auto w = d.written();
    ASSERT_EQ(w.size(), 1u) << "only the ACK; our pending packet is not re-sent";
    EXPECT_EQ(w[0].type, packet_type::acknowledge);
    d.receive_ack(id1);
    EXPECT_EQ(d.completions.size(), 2u);
}

TEST(PeerQuirks, ImplicitAckTheAnswerToOurPacketAcknowledgesIt) {
    endpoint_harness d(quiet_debugger_config());
    d.receive_data(packet_type::state_change64, id0 | sync_bit, manipulate());
    d.send(packet_type::state_manipulate, manipulate(0x3146));  // our ACK from the target is lost...
    d.receive_data(packet_type::state_manipulate, id1, manipulate(0x3146));  // ...but its reply arrives
    ASSERT_EQ(d.completions.size(), 1u);
    EXPECT_EQ(d.completions[0].result, events::send_completed::outcome::acknowledged);
    EXPECT_EQ(d.received_bodies.size(), 2u) << "and the reply is taken, not asked for again";
}

TEST(PeerQuirks, ImplicitAckCanBeTurnedOffForIndependentStreams) {
    endpoint_config c = quiet_debugger_config();
    c.implicit_ack = false;
    endpoint_harness d(c);
    d.receive_data(packet_type::state_change64, id0 | sync_bit, manipulate());
    d.send(packet_type::state_manipulate, manipulate(0x3146));
    d.receive_data(packet_type::debug_io, id1, print_string("unrelated"));
    EXPECT_TRUE(d.completions.empty());
    EXPECT_EQ(d.received_bodies.size(), 2u);
}

TEST(PeerQuirks, ADuplicateDoesNotCountAsAnImplicitAck) {
    endpoint_harness d(quiet_debugger_config());
    d.receive_data(packet_type::state_change64, id0 | sync_bit, manipulate());
    d.send(packet_type::state_manipulate, manipulate(0x3146));
    d.receive_data(packet_type::state_change64, id0 | sync_bit, manipulate());  // retransmission
    EXPECT_TRUE(d.completions.empty());
}

TEST(PeerQuirks, ToADebuggerOnlyTheReplyToItsRequestIsAnImplicitAck) {
    // Seen with ReactOS: a spontaneous state change crossed our GetVersion; taking it for the ACK
    // made us ignore the target's RESEND for the GetVersion, and the session hung.
    endpoint_harness d(quiet_debugger_config());
    d.receive_data(packet_type::state_change64, id0 | sync_bit, manipulate(0x3030));
    d.send(packet_type::state_manipulate, manipulate(0x3146));
    d.receive_data(packet_type::state_change64, id1, manipulate(0x3030));  // not an answer
    d.receive_data(packet_type::debug_io, id0, print_string("nor this"));
    d.receive_data(packet_type::state_manipulate, id1, manipulate(0x3130));  // another API's
    EXPECT_TRUE(d.completions.empty());
    d.written();
    d.receive_resend();
    const auto w = d.written();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].type, packet_type::state_manipulate) << "the RESEND is honoured";
    d.receive_data(packet_type::state_manipulate, id0, manipulate(0x3146));  // the reply
    ASSERT_EQ(d.completions.size(), 1u);
}

TEST(PeerQuirks, ToADebuggerAStopIsTheImplicitAckOfAContinue) {
    // Continue has no reply: the target runs, and its next stop proves the Continue arrived.
    endpoint_harness d(quiet_debugger_config());
    d.receive_data(packet_type::state_change64, id0 | sync_bit, manipulate(0x3030));
    d.send(packet_type::state_manipulate, manipulate(0x313C));  // Continue2; its ACK is lost
    d.receive_data(packet_type::state_change64, id1, manipulate(0x3030));
    ASSERT_EQ(d.completions.size(), 1u);
    EXPECT_EQ(d.received_bodies.size(), 2u);
}

TEST(PeerQuirks, ToATargetAnyDataPacketIsAnImplicitAck) {
    endpoint_harness t(target_config());
    t.send(packet_type::state_change64, manipulate(0x3030));
    t.receive_data(packet_type::state_manipulate, id0, manipulate(0x3146));
    ASSERT_EQ(t.completions.size(), 1u);
}

TEST(PeerQuirks, ARESENDForAPacketTakenAsDeliveredIsHonouredOnce) {
    endpoint_harness d(quiet_debugger_config());
    d.receive_data(packet_type::state_change64, id0 | sync_bit, manipulate(0x3030));
    d.send(packet_type::state_manipulate, manipulate(0x3146));
    d.receive_data(packet_type::state_manipulate, id1, manipulate(0x3146));  // implicit ACK
    d.written();
    d.receive_resend();
    auto w = d.written();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].type, packet_type::state_manipulate);
    EXPECT_EQ(w[0].id, id0) << "unchanged: a receiver that had it takes it for a repeat";
    d.receive_resend();
    EXPECT_TRUE(d.written().empty()) << "once";
}

TEST(PeerQuirks, AnAckIsSentWithoutSyncAndTakenWithOrWithoutIt) {
    endpoint_harness t(target_config());
    t.receive_data(packet_type::state_manipulate, id0 | sync_bit, manipulate());
    const auto w = t.written();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].id, id0) << "ReactOS compares an ACK with its id less SYNC";
    t.send(packet_type::state_manipulate, manipulate());
    t.receive_ack(id0 | sync_bit);  // ReactOS echoes SYNC
    ASSERT_EQ(t.completions.size(), 1u);
    t.send(packet_type::state_manipulate, manipulate());
    t.receive_ack(id1);
    EXPECT_EQ(t.completions.size(), 2u);
}
}  // namespace
