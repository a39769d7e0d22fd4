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
    t.wait(30s);
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
    endpoint_harness t(target_config());
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
    endpoint_harness d(quiet_debugger_config());
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
