// The reset handshake: the debugger sends RESET about once a second until the target answers;
// the target answers, restarts both ids and sends its pending packet again; stale RESETs cannot
// bounce.
#include <gtest/gtest.h>

#include "support/endpoint_harness.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using wire::packet_type;

std::size_t count_resets(const std::vector<wire_packet>& w) {
    return static_cast<std::size_t>(std::count_if(w.begin(), w.end(), [](auto& p) { return p.type == packet_type::reset; }));
}

TEST(ResetHandshake, ADebuggerSendsResetAtStartAndAboutOnceASecondUntilAnswered) {
    endpoint_harness d(debugger_config());
    d.start();
    EXPECT_EQ(count_resets(d.written()), 1u);
    d.wait(3500ms);
    EXPECT_EQ(count_resets(d.written()), 3u);
    d.receive_reset(0);
    EXPECT_FALSE(d.ep.handshake_pending());
    ASSERT_EQ(d.resets.size(), 1u);
    d.wait(5s);
    EXPECT_EQ(count_resets(d.written()), 0u) << "answered: no more RESETs";
}

TEST(ResetHandshake, ResetsCanBeTurnedOffLikeWinDbgResetsZero) {
    endpoint_harness d(quiet_debugger_config());
    d.start();
    d.wait(5s);
    EXPECT_TRUE(d.written().empty());
    EXPECT_FALSE(d.ep.deadline().has_value());
}

TEST(ResetHandshake, TheDebuggerHoldsItsSendUntilTheHandshakeCompletesThenUsesTheInitialId) {
    endpoint_harness d(debugger_config());
    d.start();
    d.written();
    d.send(packet_type::state_manipulate, manipulate());
    EXPECT_TRUE(d.written().empty()) << "held during the handshake";
    d.receive_reset(0xDEADBEEF);
    const auto w = d.written();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].type, packet_type::state_manipulate);
    EXPECT_EQ(w[0].id, id0);
}

TEST(ResetHandshake, TheDebuggerIgnoresDataWhileItsHandshakeIsPending) {
    endpoint_harness d(debugger_config());
    d.start();
    d.written();
    d.receive_data(packet_type::state_change64, id1, manipulate());
    EXPECT_TRUE(d.written().empty()) << "not acknowledged: the target sends it again after the reset";
    EXPECT_TRUE(d.received_bodies.empty());
}

TEST(ResetHandshake, ATargetAnswersResetsIdsAndResendsItsPendingPacketWithTheInitialId) {
    endpoint_harness t(target_config());
    t.receive_data(packet_type::state_manipulate, id0, manipulate());
    t.send(packet_type::state_manipulate, manipulate(0x3130));
    t.receive_ack(id0);  // first packet id was INITIAL|SYNC
    t.send(packet_type::debug_io, print_string("x"));  // goes out as id1
    t.written();
    t.receive_reset(0x0005F863);
    const auto w = t.written();
    ASSERT_EQ(w.size(), 2u);
    EXPECT_EQ(w[0].type, packet_type::reset);
    EXPECT_EQ(w[0].id, 0x0005F863u) << "the RESET id is echoed";
    EXPECT_EQ(w[1].type, packet_type::debug_io);
    EXPECT_EQ(w[1].id, id0) << "re-sent with INITIAL, no SYNC";
    ASSERT_EQ(t.resets.size(), 1u);
    EXPECT_EQ(t.resets[0].why, events::peer_reset::cause::reset_packet);
    // Both ids restarted: the debugger's next packet is INITIAL again.
    t.receive_data(packet_type::state_manipulate, id0, manipulate(0x3131));
    EXPECT_EQ(t.received_bodies.size(), 2u);
}

TEST(ResetHandshake, APacketSentAgainAfterAResetCountsAsARetransmission) {
    endpoint_harness t(target_config());
    t.send(packet_type::state_change64, manipulate(0x3030));
    t.receive_reset(0);
    EXPECT_EQ(t.ep.stats().packets_sent, 1u);
    EXPECT_EQ(t.ep.stats().retransmissions, 1u);
    t.receive_ack(id0);
    ASSERT_EQ(t.completions.size(), 1u);
    EXPECT_EQ(t.completions[0].attempts, 2u) << "it went on the wire twice";
}

TEST(ResetHandshake, ResetIdsOfAnyValueAreAnswered) {
    for (std::uint32_t id : {0u, 0xDEADBEEFu, 0x80800001u, 0x0005F863u, 0x00008080u}) {
        endpoint_harness t(target_config());
        t.receive_reset(id);
        const auto w = t.written();
        ASSERT_EQ(w.size(), 1u) << id;
        EXPECT_EQ(w[0].type, packet_type::reset);
    }
}

TEST(ResetHandshake, StaleInputBufferedBehindAResetIsDropped) {
    // Three RESETs queued on a pipe while the target was busy arrive in one read: one answer.
    endpoint_harness t(target_config());
    bytes queued;
    for (int i = 0; i < 3; ++i) append(queued, control_frame(packet_type::reset, 0));
    t.receive(queued);
    EXPECT_EQ(count_resets(t.written()), 1u);
    EXPECT_EQ(t.ep.stats().bytes_discarded, 32u);
}

TEST(ResetHandshake, ARepeatOfTheAnsweredResetIsIgnoredOnceTheDebuggerHasMovedOn) {
    endpoint_harness t(target_config());
    t.receive_reset(7);
    t.receive_data(packet_type::state_manipulate, id0, manipulate());  // the debugger moved on
    t.written();
    t.receive_reset(7);  // a late repeat of the same handshake
    EXPECT_EQ(count_resets(t.written()), 0u);
    EXPECT_EQ(t.ep.stats().stale_resets_ignored, 1u);
    t.receive_data(packet_type::state_manipulate, id1, manipulate());
    EXPECT_EQ(t.received_bodies.size(), 2u) << "ids were not reset by the stale RESET";
}

TEST(ResetHandshake, ARepeatIsAnsweredAgainIfTheDebuggerHasNotMovedOn) {
    // The first answer was lost: the debugger repeats its RESET and must get an answer.
    endpoint_harness t(target_config());
    t.receive_reset(7);
    t.written();
    t.wait(1s);
    t.receive_reset(7);
    EXPECT_EQ(count_resets(t.written()), 1u);
}

TEST(ResetHandshake, TheSameResetIdIsAnsweredAgainAfterTheStaleWindow) {
    // A new debugger process that uses the same RESET id as the last one (WinDbg always uses 0).
    endpoint_harness t(target_config());
    t.receive_reset(0);
    t.receive_data(packet_type::state_manipulate, id0, manipulate());
    t.written();
    t.wait(3s);
    t.receive_reset(0);
    EXPECT_EQ(count_resets(t.written()), 1u);
}

TEST(ResetHandshake, OnANewStreamTheSameResetIdIsAnsweredAtOnce) {
    endpoint_harness t(target_config());
    t.receive_reset(0);
    t.receive_data(packet_type::state_manipulate, id0, manipulate());
    t.written();
    t.ep.discard_input();  // the old debugger's connection went away; a new one arrived
    t.receive_reset(0);
    EXPECT_EQ(count_resets(t.written()), 1u);
}

TEST(ResetHandshake, ADebuggerIgnoresResetsOutsideItsHandshakeSoTheyCannotBounce) {
    endpoint_harness d(debugger_config());
    d.start();
    d.receive_reset(0);  // the answer
    d.send(packet_type::state_manipulate, manipulate());
    d.receive_ack(id0);
    d.written();
    d.receive_reset(0);  // a late answer to a repeated RESET
    EXPECT_TRUE(d.written().empty()) << "no answer, so no bounce";
    EXPECT_EQ(d.resets.size(), 1u);
    d.send(packet_type::state_manipulate, manipulate());
    EXPECT_EQ(d.written().at(0).id, id1) << "ids were not reset";
}

TEST(ResetHandshake, EachHandshakeUsesTheNextResetId) {
    endpoint_config c = debugger_config();
    c.first_reset_id = 0x100;
    endpoint_harness d(c);
    d.start();
    EXPECT_EQ(d.written().at(0).id, 0x100u);
    d.receive_reset(0x100);
    d.written();
    d.ep.start_reset(d.now);
    d.wait(0ms);
    EXPECT_EQ(d.written().at(0).id, 0x101u);
}

TEST(ResetHandshake, ALateEchoOfAnEarlierHandshakeDoesNotEndTheCurrentOne) {
    endpoint_config c = debugger_config();
    c.first_reset_id = 0x100;
    endpoint_harness d(c);
    d.start();
    d.receive_reset(0x100);  // handshake 0x100 done
    d.ep.start_reset(d.now);  // handshake 0x101 pending
    d.wait(0ms);
    d.receive_reset(0x100);  // a late echo of the first
    EXPECT_TRUE(d.ep.handshake_pending());
    d.receive_reset(0x101);
    EXPECT_FALSE(d.ep.handshake_pending());
}

TEST(ResetHandshake, ATargetThatAnswersWithItsOwnIdEndsTheHandshake) {
    endpoint_harness d(debugger_config());
    d.start();
    d.receive_reset(0);  // ReactOS answers with 0
    EXPECT_FALSE(d.ep.handshake_pending());
    d.ep.start_reset(d.now);
    d.wait(0ms);
    d.receive_reset(0x0005F863);  // Windows answers with whatever is on its stack
    EXPECT_FALSE(d.ep.handshake_pending());
}

TEST(ResetHandshake, AResetRequestDuringAHandshakeRepeatsItInsteadOfStartingAnother) {
    endpoint_harness d(debugger_config());
    d.start();
    const auto first = d.written();
    d.ep.start_reset(d.now);
    d.wait(0ms);
    const auto again = d.written();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].id, first.at(0).id) << "same handshake, same id";
}

TEST(ResetHandshake, AnUnansweredHandshakeReportsThePeerSilent) {
    endpoint_harness d(debugger_config());
    d.start();
    d.wait(10s);
    ASSERT_FALSE(d.links.empty());
    EXPECT_EQ(d.links.back(), events::link_state::peer_silent);
    EXPECT_TRUE(d.ep.handshake_pending());
}
}  // namespace
