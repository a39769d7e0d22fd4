// The application's side of the contract: what send() refuses, what deadline() says, link states.
#include <gtest/gtest.h>

#include "support/endpoint_harness.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using wire::packet_type;

TEST(Requests, OneSendAtATime) {
    endpoint_harness d(quiet_debugger_config());
    EXPECT_FALSE(d.send(packet_type::state_manipulate, manipulate()));
    EXPECT_EQ(d.send(packet_type::state_manipulate, manipulate()), errc::send_in_progress);
    d.receive_ack(id0);
    EXPECT_FALSE(d.send(packet_type::state_manipulate, manipulate()));
}

TEST(Requests, RefusesControlTypesAndBodiesOverTheLimit) {
    endpoint_harness d(quiet_debugger_config());
    EXPECT_EQ(d.send(packet_type::acknowledge, {}), errc::not_a_data_type);
    EXPECT_EQ(d.send(packet_type::state_manipulate, bytes(4001)), errc::body_too_large);
    EXPECT_TRUE(d.written().empty());
    EXPECT_FALSE(d.ep.send_in_progress());
    EXPECT_FALSE(d.send(packet_type::state_manipulate, bytes(4000)));
}

TEST(Requests, TheMessageHeaderAndDataAreOneBody) {
    endpoint_harness d(quiet_debugger_config());
    const bytes header = manipulate(0x3131), data{1, 2, 3};
    ASSERT_FALSE(d.ep.send(packet_type::state_manipulate, header, data, d.now));
    d.wait(0ms);
    bytes whole = header;
    append(whole, data);
    EXPECT_EQ(d.written().at(0).body, whole);
}

TEST(Requests, TheDeadlineIsTheEarliestTimerAndAbsentWhenIdle) {
    endpoint_harness d(quiet_debugger_config());
    EXPECT_FALSE(d.ep.deadline().has_value());
    d.send(packet_type::state_manipulate, manipulate());
    ASSERT_TRUE(d.ep.deadline().has_value());
    EXPECT_EQ(*d.ep.deadline(), d.now + 1s);
    d.receive_ack(id0);
    EXPECT_FALSE(d.ep.deadline().has_value());
    endpoint_harness r(debugger_config());
    EXPECT_EQ(r.ep.deadline(), timestamp{}) << "a debugger wants to start its handshake at once";
}

TEST(Requests, LinkStatesGoFromWaitingToConnected) {
    endpoint_harness t(target_config());
    EXPECT_EQ(t.ep.link(), events::link_state::waiting);
    t.receive_data(packet_type::state_manipulate, id0, manipulate());
    ASSERT_EQ(t.links.size(), 1u);
    EXPECT_EQ(t.links[0], events::link_state::connected);
}

TEST(Requests, ALargerBodyLimitIsHonouredBothWays) {
    endpoint_config c = quiet_debugger_config();
    c.max_body = 8000;
    endpoint_harness d(c);
    EXPECT_FALSE(d.send(packet_type::state_manipulate, bytes(8000, 1)));
    d.receive_data(packet_type::state_manipulate, id0, bytes(7000, 2));
    EXPECT_EQ(d.received_bodies.size(), 1u);
}
}  // namespace
