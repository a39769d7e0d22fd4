// Break-in: the debugger's single 'b'; the target reports it on its next poll, and (by default)
// only if a leader byte, another 'b' or nothing follows it.
#include <gtest/gtest.h>

#include "support/endpoint_harness.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using wire::packet_type;

TEST(Breakin, TheDebuggerSendsASingleB) {
    endpoint_harness d(quiet_debugger_config());
    d.ep.send_breakin(d.now);
    d.wait(0ms);
    const auto w = d.written();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_TRUE(w[0].breakin);
}

TEST(Breakin, TheTargetReportsItOnItsNextPollOnce) {
    endpoint_harness t(target_config());
    EXPECT_FALSE(t.ep.poll_breakin());
    t.receive(bytes{wire::breakin_byte});
    EXPECT_TRUE(t.ep.poll_breakin());
    EXPECT_FALSE(t.ep.poll_breakin()) << "a poll consumes it";
}

TEST(Breakin, ABreakinFollowedByAPacketIsHonouredAndRaisesAnEvent) {
    endpoint_harness t(target_config());
    bytes stream{wire::breakin_byte};
    append(stream, control_frame(packet_type::reset, 0));
    t.receive(stream);
    EXPECT_EQ(t.breakin_events, 1u);
    EXPECT_TRUE(t.ep.poll_breakin());
}

TEST(Breakin, ABreakinFollowedByNoiseIsIgnored) {
    endpoint_harness t(target_config());
    t.receive(bytes{0x13, wire::breakin_byte, 0x41, 0x42});
    EXPECT_FALSE(t.ep.poll_breakin());
    EXPECT_EQ(t.breakin_events, 0u);
}

TEST(Breakin, TheByteAfterTheBMayArriveInTheNextRead) {
    endpoint_harness honoured(target_config()), ignored(target_config());
    honoured.receive(bytes{wire::breakin_byte});
    honoured.receive(bytes{wire::data_leader_byte});
    EXPECT_TRUE(honoured.ep.poll_breakin());
    ignored.receive(bytes{wire::breakin_byte});
    ignored.receive(bytes{0x41});
    EXPECT_FALSE(ignored.ep.poll_breakin());
}

TEST(Breakin, RepeatedBsAreOneBreakin) {
    endpoint_harness t(target_config());
    t.receive(bytes{wire::breakin_byte, wire::breakin_byte, wire::breakin_byte});
    EXPECT_EQ(t.breakin_events, 1u);
    EXPECT_TRUE(t.ep.poll_breakin());
    EXPECT_FALSE(t.ep.poll_breakin());
}

TEST(Breakin, TheStrictRuleCanBeTurnedOff) {
    endpoint_config c = target_config();
    c.strict_breakin = false;
    endpoint_harness t(c);
    t.receive(bytes{wire::breakin_byte, 0x41});
    EXPECT_TRUE(t.ep.poll_breakin());
}

TEST(Breakin, ABInsideAPacketBodyIsNotABreakin) {
    endpoint_harness t(target_config());
    t.receive_data(packet_type::state_manipulate, id0, bytes(64, wire::breakin_byte));
    EXPECT_FALSE(t.ep.poll_breakin());
}

TEST(Breakin, ADebuggerIgnoresBs) {
    endpoint_harness d(quiet_debugger_config());
    d.receive(bytes{wire::breakin_byte, wire::data_leader_byte});
    EXPECT_EQ(d.breakin_events, 0u);
}
}  // namespace
