// RESEND: asked for on a bad checksum, a bad trailer, a short body and an invalid id; answered by
// sending the same packet with the same id.
#include <gtest/gtest.h>

#include "support/endpoint_harness.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using wire::packet_type;

void expect_single_resend(endpoint_harness& h) {
    const auto w = h.written();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_TRUE(w[0].control);
    EXPECT_EQ(w[0].type, packet_type::resend);
    EXPECT_TRUE(h.received_bodies.empty());
}

TEST(Resend, IsRequestedForABadChecksum) {
    endpoint_harness t(target_config());
    bytes frame = data_frame(packet_type::state_manipulate, id0, manipulate());
    frame[20] ^= 0x01;
    t.receive(frame);
    expect_single_resend(t);
}

TEST(Resend, IsRequestedForABadTrailer) {
    endpoint_harness t(target_config());
    bytes frame = data_frame(packet_type::state_manipulate, id0, manipulate());
    frame.back() = 0x00;
    t.receive(frame);
    expect_single_resend(t);
}

TEST(Resend, IsRequestedWhenTheBodyStopsArrivingForTheReadTimeout) {
    endpoint_harness t(target_config());
    const bytes frame = data_frame(packet_type::state_manipulate, id0, manipulate());
    t.receive(std::span(frame).first(30));
    EXPECT_TRUE(t.written().empty()) << "nothing before the timeout";
    t.wait(999ms);
    EXPECT_TRUE(t.written().empty());
    t.wait(1ms);
    expect_single_resend(t);
}

TEST(Resend, IsNotRequestedForACutOffControlPacket) {
    endpoint_harness t(target_config());
    const bytes ack = control_frame(packet_type::acknowledge, id0);
    t.receive(std::span(ack).first(10));
    t.wait(2s);
    EXPECT_TRUE(t.written().empty());
}

TEST(Resend, IsRequestedOncePerReadHoweverManyPacketsWereDamaged) {
    endpoint_harness t(target_config());
    bytes stream;
    for (int i = 0; i < 3; ++i) {
        bytes frame = data_frame(packet_type::state_manipulate, id0, manipulate());
        frame[30] ^= 0xFF;
        append(stream, frame);
    }
    t.receive(stream);
    expect_single_resend(t);
}

TEST(Resend, ASenderRetransmitsTheSamePacketWithTheSameIdWhenAskedTo) {
    endpoint_harness d(quiet_debugger_config());
    d.send(packet_type::state_manipulate, manipulate(0x3130));
    const auto first = d.written();
    d.receive_resend();
    const auto again = d.written();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].id, first[0].id);
    EXPECT_EQ(again[0].body, first[0].body);
    EXPECT_EQ(d.ep.stats().retransmissions, 1u);
}

TEST(Resend, ARequestWhileNothingIsPendingIsIgnored) {
    endpoint_harness d(quiet_debugger_config());
    d.receive_resend();
    EXPECT_TRUE(d.written().empty());
}

TEST(Resend, AnUnacknowledgedPacketIsSentAgainAfterTheAckTimeout) {
    endpoint_harness d(quiet_debugger_config());
    d.send(packet_type::state_manipulate, manipulate());
    d.written();
    d.wait(999ms);
    EXPECT_TRUE(d.written().empty());
    d.wait(1ms);
    const auto w = d.written();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].id, id0);
}
}  // namespace
