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

TEST(ResetHandshake, EveryResetIsAnsweredEvenARepeatOfTheSameIdSoon) {
    // pykdclient and WinDbg use the same id on every handshake; a target that took a quick second
    // handshake for a stale repeat would leave them waiting for ever.
    endpoint_harness t(target_config());
    t.receive_reset(0x8080);
    t.receive_data(packet_type::state_manipulate, id0, manipulate());
    t.written();
    t.wait(10ms);
    t.receive_reset(0x8080);
    EXPECT_EQ(count_resets(t.written()), 1u);
    EXPECT_EQ(t.ep.stats().stale_resets_ignored, 0u);
}

TEST(ResetHandshake, OptionallyARepeatOfTheAnsweredResetIsIgnoredOnceTheDebuggerHasMovedOn) {
    endpoint_config c = target_config();
    c.stale_reset_window = 2s;
    endpoint_harness t(c);
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
    endpoint_config c = target_config();
    c.stale_reset_window = 2s;
    endpoint_harness t(c);
    t.receive_reset(7);
    t.written();
    t.wait(1s);
    t.receive_reset(7);
    EXPECT_EQ(count_resets(t.written()), 1u);
}
TEST(ResetHandshake, TheSameResetIdIsAnsweredAgainAfterTheStaleWindow) {
    endpoint_config c = target_config();
    c.stale_reset_window = 2s;
    endpoint_harness t(c);
    t.receive_reset(0);
    t.receive_data(packet_type::state_manipulate, id0, manipulate());
    t.written();
    t.wait(3s);
    t.receive_reset(0);
    EXPECT_EQ(count_resets(t.written()), 1u);
}
TEST(ResetHandshake, OnANewStreamTheSameResetIdIsAnsweredAtOnce) {
    endpoint_config c = target_config();
    c.stale_reset_window = 2s;
    endpoint_harness t(c);
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

TEST(ResetHandshake, EveryHandshakeSendsResetIdZeroWhichXenKddRequires) {
    endpoint_harness d(debugger_config());
    d.start();
    EXPECT_EQ(d.written().at(0).id, 0u);
    d.receive_reset(0xDEADBEEF);
    d.written();
    d.ep.start_reset(d.now);
    d.wait(0ms);
    EXPECT_EQ(d.written().at(0).id, 0u);
    d.wait(1s);
    EXPECT_EQ(d.written().at(0).id, 0u) << "the repeat too";
}

TEST(ResetHandshake, OneResetOnConnectEvenIfTheCallerAlsoAsksForOne) {
    // A session opening its first stream calls start_reset() as the endpoint's first input.
    endpoint_harness d(debugger_config());
    d.ep.start_reset(d.now);
    d.wait(0ms);
    EXPECT_EQ(count_resets(d.written()), 1u);
    d.ep.start_reset(d.now);  // a later call is a request of its own
    d.wait(0ms);
    EXPECT_EQ(count_resets(d.written()), 1u);
}

TEST(ResetHandshake, TargetDataDuringTheHandshakeBringsAnotherResetAtOnceRateLimited) {
    // ReactOS reads a RESET only while it waits for an ACK, which is when it has just sent.
    endpoint_harness d(debugger_config());
    d.start();
    d.written();
    d.wait(300ms);
    d.receive_data(packet_type::debug_io, id0 | sync_bit, print_string("a"));
    auto w = d.written();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].type, packet_type::reset);
    d.wait(10ms);
    d.receive_data(packet_type::debug_io, id0 | sync_bit, print_string("a"));
    EXPECT_TRUE(d.written().empty()) << "at most one per reset_on_data_interval";
    d.wait(100ms);
    d.receive_data(packet_type::debug_io, id0 | sync_bit, print_string("a"));
    EXPECT_EQ(count_resets(d.written()), 1u);
    EXPECT_TRUE(d.received_bodies.empty());
}

TEST(ResetHandshake, RESETsARunningTargetDroppedDoNotHoldTheHandshakeOnceItStops) {
    // Windows' and ReactOS's break-in polls read and drop every byte that is not a break-in, so
    // the RESETs a debugger repeats while the target runs are never answered. Once the target
    // stops and sends, the RESET that brings is the one it answers, and that answer ends the
    // handshake. (Counting the dropped one too left the handshake waiting for an answer that never
    // came, and with the target's resends and our repeats both a second apart it never ended:
    // kdcom-sim attaching to a running target under load.)
    endpoint_harness d(debugger_config());
    d.start();
    EXPECT_EQ(count_resets(d.written()), 1u);  // read and dropped by the running target
    d.wait(300ms);
    d.receive_data(packet_type::state_change64, id1, manipulate(0x3030));  // it stopped
    EXPECT_EQ(count_resets(d.written()), 1u);
    d.wait(5ms);
    d.receive_reset(0);  // the answer, and the state change again under the restarted ids
    d.receive_data(packet_type::state_change64, id0, manipulate(0x3030));
    EXPECT_FALSE(d.ep.handshake_pending());
    EXPECT_EQ(d.received_bodies.size(), 1u);
    const auto w = d.written();
    ASSERT_FALSE(w.empty());
    EXPECT_EQ(w.back().type, packet_type::acknowledge);
}

TEST(ResetHandshake, AfterTheHandshakeTheDebuggerTakesWhateverIdTheTargetsFirstPacketCarries) {
    // Xen's kdd does not restart its ids: its first packet after the handshake may be id1.
    endpoint_harness d(debugger_config());
    d.start();
    d.receive_reset(0xDEADBEEF);
    d.receive_data(packet_type::debug_io, id1, print_string("kdd"));
    d.receive_data(packet_type::state_change64, id0, manipulate(0x3030));
    EXPECT_EQ(d.received_bodies.size(), 2u);
}

TEST(ResetHandshake, AfterAnsweringATargetTakesWhateverIdTheDebuggersFirstPacketCarries) {
    endpoint_harness t(target_config());
    t.receive_reset(0);
    t.receive_data(packet_type::state_manipulate, id1, manipulate());
    t.receive_data(packet_type::state_manipulate, id0, manipulate(0x3131));
    EXPECT_EQ(t.received_bodies.size(), 2u);
}
TEST(ResetHandshake, ALateAnswerToAnEarlierHandshakeEndsTheCurrentOneHarmlessly) {
    // The target reads our newer RESET before anything we send after taking the late answer
    // (the link keeps order), answers it too and sends its pending packet again: a repeat.
    endpoint_harness d(debugger_config());
    d.start();
    d.receive_reset(0);
    d.ep.start_reset(d.now);
    d.wait(0ms);
    d.receive_reset(0);  // the late answer to the first handshake's RESET
    EXPECT_FALSE(d.ep.handshake_pending());
    d.receive_data(packet_type::state_change64, id0, manipulate(0x3030));
    d.receive_reset(0);  // the answer to the second one
    d.receive_data(packet_type::state_change64, id0, manipulate(0x3030));  // sent again
    EXPECT_EQ(d.received_bodies.size(), 1u) << "the same packet again after the RESET: a repeat";
    d.receive_data(packet_type::debug_io, id1, print_string("next"));
    EXPECT_EQ(d.received_bodies.size(), 2u);
    d.written();
    d.send(packet_type::state_manipulate, manipulate());
    EXPECT_EQ(d.written().at(0).id, id0);
}

TEST(ResetHandshake, OnlyTheAnswerToTheLastResetSentEndsTheHandshake) {
    // Every RESET carries id 0, so answers are matched by counting: the target answers each, in
    // order. Ending on the first would let the target restart its ids again, for the second RESET,
    // after our next packets: our ACKs would then acknowledge its new packets with the same ids.
    endpoint_harness d(debugger_config());
    d.start();
    d.ep.start_reset(d.now);  // a second RESET in the same handshake
    d.wait(0ms);
    d.receive_reset(0);
    EXPECT_TRUE(d.ep.handshake_pending()) << "the first answer: one more to come";
    d.receive_reset(0);
    EXPECT_FALSE(d.ep.handshake_pending());
}

TEST(ResetHandshake, ALostAnswerCannotHoldTheHandshakeForEver) {
    endpoint_harness d(debugger_config());
    d.start();
    d.ep.start_reset(d.now);  // two RESETs out; the answer to one of them will be lost
    d.wait(0ms);
    d.receive_reset(0);
    d.wait(1s);  // the repeat: earlier RESETs are given up for lost
    d.receive_reset(0);
    EXPECT_FALSE(d.ep.handshake_pending());
}

TEST(ResetHandshake, AfterARestartOfTheTargetsIdsItsNextNewPacketIsTakenWhateverItsId) {
    // A RESET we did not ask for was answered (a duplicate of ours): the target restarted its ids
    // and its next packet, a new one, carries the initial id although we expect the other.
    endpoint_harness d(debugger_config());
    d.start();
    d.receive_reset(0);
    d.receive_data(packet_type::state_change64, id0, manipulate(0x3030));
    d.receive_reset(0);
    d.receive_data(packet_type::debug_io, id0, print_string("new"));
    EXPECT_EQ(d.received_bodies.size(), 2u);
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
