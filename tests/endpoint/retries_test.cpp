// Retries and the droppable sends: 5 tries before first contact, then the configured count;
// DbgPrint, load-symbols, create-file and trace I/O give up and leave the target believing no
// debugger is present; everything else keeps trying until acknowledged or cancelled.
#include <gtest/gtest.h>

#include "kdcom/endpoint/droppable.hpp"
#include "support/endpoint_harness.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using wire::packet_type;

std::size_t data_packets(const std::vector<wire_packet>& w) {
    return static_cast<std::size_t>(std::count_if(w.begin(), w.end(), [](auto& p) { return !p.control && !p.breakin; }));
}

TEST(Retries, ADbgPrintWithNoDebuggerGivesUpAfterFiveTries) {
    endpoint_harness t(target_config());
    t.send(packet_type::debug_io, print_string("hello\n"));
    t.wait(10s);
    EXPECT_EQ(data_packets(t.written()), 5u);
    ASSERT_EQ(t.completions.size(), 1u);
    EXPECT_EQ(t.completions[0].result, events::send_completed::outcome::given_up);
    EXPECT_EQ(t.completions[0].attempts, 5u);
    EXPECT_EQ(t.ep.link(), events::link_state::debugger_not_present);
}

TEST(Retries, GivingUpResetsTheIdsAsAtBoot) {
    endpoint_harness t(target_config());
    t.send(packet_type::debug_io, print_string("a"));
    t.receive_ack(id0);
    t.send(packet_type::debug_io, print_string("b"));  // id1, never acknowledged
    t.wait(60s);
    t.written();
    t.send(packet_type::debug_io, print_string("c"));
    EXPECT_EQ(t.written().at(0).id, id0 | sync_bit);
}

TEST(Retries, AfterFirstContactTheConfiguredCountApplies) {
    endpoint_config c = target_config();
    c.retries = 8;
    endpoint_harness t(c);
    t.send(packet_type::debug_io, print_string("a"));
    t.receive_ack(id0);
    t.written();
    t.send(packet_type::debug_io, print_string("b"));
    t.wait(30s);
    EXPECT_EQ(data_packets(t.written()), 8u);
    EXPECT_EQ(t.completions.back().result, events::send_completed::outcome::given_up);
}

TEST(Retries, AStateChangeIsRetriedForeverAndThePeerReportedSilentOnce) {
    endpoint_config c = target_config();
    c.ack_timeout_min = c.ack_timeout_max = c.ack_timeout = 1s;  // a fixed timer, to count attempts
    endpoint_harness t(c);
    t.send(packet_type::state_change64, manipulate(0x3030));
    t.wait(60s);
    EXPECT_EQ(data_packets(t.written()), 61u);
    EXPECT_TRUE(t.completions.empty());
    EXPECT_EQ(std::count(t.links.begin(), t.links.end(), events::link_state::peer_silent), 1);
    t.receive_ack(id0);
    ASSERT_EQ(t.completions.size(), 1u);
    EXPECT_EQ(t.completions[0].result, events::send_completed::outcome::acknowledged);
    EXPECT_EQ(t.ep.link(), events::link_state::connected);
}

TEST(Retries, ATargetThatCancelsASendRestartsItsIdsWithSync) {
    endpoint_harness t(target_config());
    t.send(packet_type::state_change64, manipulate(0x3030));
    t.receive_ack(id0);
    t.send(packet_type::state_change64, manipulate(0x3030));
    t.ep.cancel_send(t.now);
    t.wait(0ms);
    ASSERT_EQ(t.completions.size(), 2u);
    EXPECT_EQ(t.completions[1].result, events::send_completed::outcome::cancelled);
    t.written();
    t.send(packet_type::state_change64, manipulate(0x3030));
    EXPECT_EQ(t.written().at(0).id, id0 | sync_bit);
}

TEST(Retries, ADebuggerThatCancelsASendRestartsIdsThroughTheResetHandshake) {
    endpoint_harness d(debugger_config());
    d.start();
    d.receive_reset(0);
    d.send(packet_type::state_manipulate, manipulate());
    d.receive_ack(id0);
    d.send(packet_type::state_manipulate, manipulate());
    d.written();
    d.ep.cancel_send(d.now);
    d.wait(0ms);
    EXPECT_EQ(d.completions.back().result, events::send_completed::outcome::cancelled);
    const auto w = d.written();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].type, packet_type::reset);
    d.send(packet_type::state_manipulate, manipulate());
    EXPECT_TRUE(d.written().empty()) << "held until the target answers";
    d.receive_reset(0);
    EXPECT_EQ(d.written().at(0).id, id0);
}

TEST(Retries, WithResetsOffACancelledSendStartsNoHandshake) {
    // WinDbg's resets=0: nothing the debugger does may send a RESET.
    endpoint_harness d(quiet_debugger_config());
    d.send(packet_type::state_manipulate, manipulate());
    d.receive_ack(id0);
    d.send(packet_type::state_manipulate, manipulate());
    d.written();
    d.ep.cancel_send(d.now);
    d.wait(5s);
    EXPECT_TRUE(d.written().empty());
    EXPECT_FALSE(d.ep.handshake_pending());
    d.send(packet_type::state_manipulate, manipulate());
    EXPECT_EQ(d.written().at(0).id, id1) << "ids unchanged";
}

TEST(Retries, TheAckTimeoutAdaptsToTheMeasuredRoundTrip) {
    endpoint_harness t(target_config());
    // Ten exchanges with a 2 ms round trip: the timer falls to its 50 ms floor.
    std::uint32_t id = id0;
    for (int i = 0; i < 10; ++i) {
        t.send(packet_type::debug_io, print_string("x"));
        t.wait(2ms);
        t.receive_ack(id);
        id ^= 1;
    }
    t.written();
    t.send(packet_type::state_change64, manipulate(0x3030));
    t.wait(49ms);
    EXPECT_EQ(data_packets(t.written()), 1u) << "not yet";
    t.wait(2ms);
    EXPECT_EQ(data_packets(t.written()), 1u) << "retransmitted after the floor";
    // Each timeout doubles the wait: 100 ms, then 200 ms.
    t.wait(98ms);
    EXPECT_EQ(data_packets(t.written()), 0u);
    t.wait(2ms);
    EXPECT_EQ(data_packets(t.written()), 1u);
    t.wait(201ms);
    EXPECT_EQ(data_packets(t.written()), 1u);
    EXPECT_EQ(t.ep.stats().timeouts, 3u);
}

TEST(Retries, TheAckTimeoutNeverPassesItsCeilingNorLearnsFromRetransmissions) {
    endpoint_harness t(target_config());
    t.send(packet_type::state_change64, manipulate(0x3030));
    t.wait(30s);
    const auto before = data_packets(t.written());
    EXPECT_GE(before, 15u) << "1 s, then 2 s at most between attempts";
    EXPECT_LE(before, 16u);
    t.receive_ack(id0 | sync_bit);  // an ACK of a retransmitted packet is no sample (Karn)
    t.send(packet_type::state_change64, manipulate(0x3030));
    t.wait(999ms);
    EXPECT_EQ(data_packets(t.written()), 1u) << "still the initial 1 s";
}

TEST(Retries, ADroppableSendIsNotGivenUpWhileThePeerShowsItIsThere) {
    // A debugger whose RESET answer was lost drops our DbgPrint and sends RESETs and RESENDs:
    // it is there, so the print waits for it.
    endpoint_harness t(target_config());
    t.send(packet_type::debug_io, print_string("hello\n"));
    for (int i = 0; i < 8; ++i) {
        t.wait(1500ms);
        t.receive_resend();
    }
    EXPECT_TRUE(t.completions.empty());
    t.wait(20s);  // then it goes quiet
    ASSERT_EQ(t.completions.size(), 1u);
    EXPECT_EQ(t.completions[0].result, events::send_completed::outcome::given_up);
}

TEST(Retries, WhichSendsAreDroppable) {
    auto body = [](std::uint32_t first) {
        bytes b(16, 0);
        b[0] = static_cast<std::uint8_t>(first);
        b[1] = static_cast<std::uint8_t>(first >> 8);
        return b;
    };
    EXPECT_TRUE(is_droppable(packet_type::debug_io, body(0x3230), true));         // DbgPrint
    EXPECT_FALSE(is_droppable(packet_type::debug_io, body(0x3231), true));        // GetString
    EXPECT_TRUE(is_droppable(packet_type::state_change64, body(0x3031), true));   // load symbols
    EXPECT_FALSE(is_droppable(packet_type::state_change64, body(0x3030), true));  // exception
    EXPECT_TRUE(is_droppable(packet_type::file_io, body(0x3430), true));          // create file
    EXPECT_FALSE(is_droppable(packet_type::file_io, body(0x3431), true));
    EXPECT_TRUE(is_droppable(packet_type::trace_io, body(0x3330), true));
    EXPECT_FALSE(is_droppable(packet_type::trace_io, body(0x3330), false));
    EXPECT_FALSE(is_droppable(packet_type::state_manipulate, body(0x3230), true));
    EXPECT_FALSE(is_droppable(packet_type::debug_io, bytes{0x30, 0x32}, true)) << "too short to tell";
}
}  // namespace
