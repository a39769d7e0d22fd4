// The session's rules (session/core.hpp) in virtual time, one test per rule: sends in order and
// one at a time, answers leaving with acknowledgements, the acknowledgement delay, both queue
// bounds, reconnection backoff, what a new stream forgets and what it keeps. net::session runs the
// same core over real I/O (tests/net/session_test.cpp checks that binding).
#include <gtest/gtest.h>

#include <memory>

#include "kdcom/session/core.hpp"
#include "kdcom/sim/duplex.hpp"
#include "kdcom/sim/session_node.hpp"
#include "support/decode_helpers.hpp"
#include "support/session_checks.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;
using wire::packet_type;
using outcome = sim::session_node::outcome;

// A debugger and a target session joined by a line in virtual time (1 ms each way unless the
// faults say otherwise).
struct session_line {
    explicit session_line(const session::options& target_options = {}, const session::options& debugger_options = {},
                          sim::faults faults = {.delay = 1ms}) {
        auto d = std::make_unique<sim::session_node>(endpoint_config{.role = role::debugger}, debugger_options);
        auto t = std::make_unique<sim::session_node>(endpoint_config{.role = role::target}, target_options);
        debugger = d.get();
        target = t.get();
        line = std::make_unique<sim::duplex>(std::move(d), std::move(t),
                                             sim::duplex_config{.to_target = faults, .to_debugger = faults});
        // The debugger's reset handshake, before any test traffic.
        line->run_until([&] { return false; }, line->now() + 100ms);
    }
    // Runs the line (after putting on it what the test made a node write) until `done`.
    bool run_until(const std::function<bool()>& done, timestamp within = 60s) {
        line->flush();
        return line->run_until(done, line->now() + within);
    }
    sim::session_node* debugger;
    sim::session_node* target;
    std::unique_ptr<sim::duplex> line;
};

std::vector<bytes> bodies_of(const std::vector<session::received_packet>& packets) {
    std::vector<bytes> b;
    for (const auto& p : packets) b.push_back(p.body);
    return b;
}

// Drains `c`, keeping the outcomes of finished sends and the bytes queued for the peer.
struct drained {
    std::vector<outcome> finished;
    bytes queued;
};
drained drain(session::core& c) {
    drained d;
    while (auto e = c.next_event()) {
        if (auto* f = std::get_if<session::session_events::send_finished>(&*e)) d.finished.push_back(f->result);
        if (auto* q = std::get_if<session::session_events::queued_for_peer>(&*e)) append(d.queued, q->bytes);
    }
    return d;
}

TEST(SessionCore, SendsLeaveOneAtATimeInOrderAndARefusedOneDoesNotHoldUpTheRest) {
    session_line s;
    const bytes first = numbered_body(0, 100), second = numbered_body(1, 200);
    const bytes too_large(wire::default_max_body + 1, 0x55);
    EXPECT_EQ(s.target->send(packet_type::acknowledge, first), make_error_code(errc::not_a_data_type))
        << "refused at once when the endpoint is free: no event will follow";
    ASSERT_FALSE(s.target->send(packet_type::state_change64, first));
    ASSERT_FALSE(s.target->send(packet_type::state_change64, too_large)) << "queued: refused when its turn comes";
    ASSERT_FALSE(s.target->send(packet_type::state_change64, second));
    ASSERT_TRUE(s.run_until([&] { return s.target->finished().size() == 3; }));
    EXPECT_EQ(s.target->finished(), (std::vector<outcome>{outcome::acknowledged, outcome::refused, outcome::acknowledged}));
    EXPECT_EQ(bodies_of(s.debugger->taken()), (std::vector<bytes>{first, second}));
}

TEST(SessionCore, AnAnswerFromThePacketHandlerLeavesWithTheAcknowledgementInOneWrite) {
    constexpr int count = 50;
    session_line s;
    s.target->on_packet = [](sim::session_node& self, const session::received_packet& p) {
        self.send(packet_type::state_manipulate, p.body);
    };
    int answered = 0;
    s.debugger->on_packet = [&](sim::session_node& self, const session::received_packet&) {
        if (++answered < count) self.send(packet_type::state_manipulate, numbered_body(static_cast<std::uint32_t>(answered), 40));
    };
    const auto writes_before = s.target->writes();
    s.debugger->send(packet_type::state_manipulate, numbered_body(0, 40));
    ASSERT_TRUE(s.run_until([&] { return answered == count; }));
    EXPECT_EQ(s.target->writes() - writes_before, static_cast<std::uint64_t>(count))
        << "one write per exchange: the ACK of the request and the answer together";
}

// The target answers each request 20 ms after it arrives; the debugger sends one. Returns how
// many writes the target made until the answer was taken.
std::uint64_t target_writes_for_a_late_answer(session_line& s) {
    s.target->on_packet = [](sim::session_node& self, const session::received_packet& p) {
        self.send_at(self.now() + 20ms, packet_type::state_manipulate, p.body);
    };
    const auto writes_before = s.target->writes();
    s.debugger->send(packet_type::state_manipulate, numbered_body(0, 40));
    EXPECT_TRUE(s.run_until([&] { return s.debugger->taken().size() == 1; })) << "the answer never came";
    return s.target->writes() - writes_before;
}

TEST(SessionCore, WithAnAckDelayALoneAcknowledgementWaitsForAnAnswerThatTakesTime) {
    session_line s({.ack_delay = 300ms});
    EXPECT_EQ(target_writes_for_a_late_answer(s), 1u) << "the acknowledgement waited and left with the answer";
    EXPECT_EQ(s.debugger->finished(), std::vector<outcome>{outcome::acknowledged});
    EXPECT_LT(s.line->now(), 1s) << "the answer ended the wait, not the delay";
}

TEST(SessionCore, WithoutAnAckDelayTheAcknowledgementLeavesAtOnce) {
    session_line s;
    EXPECT_EQ(target_writes_for_a_late_answer(s), 2u) << "the acknowledgement, then the answer";
}

TEST(SessionCore, AnAcknowledgementWithNoAnswerLeavesExactlyWhenTheAckDelayIsOver) {
    session_line s({.ack_delay = 100ms});
    const auto sent_at = s.line->now();
    s.debugger->send(packet_type::state_manipulate, numbered_body(0, 40));
    ASSERT_TRUE(s.run_until([&] { return !s.debugger->finished().empty(); }));
    // 1 ms to the target, held 100 ms, 1 ms back.
    EXPECT_EQ(s.line->now() - sent_at, 102ms);
    EXPECT_EQ(s.debugger->core().protocol().stats().retransmissions, 0u);
}

TEST(SessionCore, ADeadlineIsSetForAHeldAcknowledgement) {
    session::core c({.role = role::target}, {.ack_delay = 100ms});
    c.stream_opened(0s);
    drain(c);
    const bytes frame = data_frame(packet_type::state_manipulate, 0x80800000, numbered_body(0, 40));
    c.bytes_read(frame, 1s);
    drain(c);
    EXPECT_TRUE(c.start_write().empty()) << "a lone acknowledgement is held";
    ASSERT_TRUE(c.deadline().has_value());
    EXPECT_EQ(*c.deadline(), 1s + 100ms);
    c.on_time(1s + 99ms);
    drain(c);
    EXPECT_TRUE(c.start_write().empty());
    c.on_time(1s + 100ms);
    drain(c);
    EXPECT_EQ(decode_whole(c.start_write()).packets.size(), 1u) << "the ACK, once the delay is over";
}

// A peer sending RESETs as fast as it can (each asks for a RESET back) and reading nothing, against
// a target whose write queue holds `limit` bytes. Returns the reads the target took.
int flood_of_resets(session::core& c, std::size_t limit) {
    c.stream_opened(0s);
    drain(c);
    const bytes reset = control_frame(packet_type::reset, 0x80800000);
    bytes burst;
    for (int i = 0; i < 100; ++i) append(burst, reset);
    int reads = 0;
    for (; reads < 2000 && c.wants_read(); ++reads) {
        c.bytes_read(burst, 1s);
        drain(c);
        EXPECT_LE(c.bytes_unwritten(), limit);
    }
    return reads;
}

TEST(SessionCore, APeerThatNeverReadsCannotGrowTheWriteQueue) {
    // A bound the answers fill exactly (16-byte RESETs): reading stops there.
    session::core exact({.role = role::target}, {.write_queue_limit = 4096});
    EXPECT_LT(flood_of_resets(exact, 4096), 2000) << "the session stopped reading the peer";
    EXPECT_FALSE(exact.wants_read());
    EXPECT_FALSE(exact.start_write().empty());
    exact.finish_write();
    EXPECT_TRUE(exact.wants_read()) << "once the bytes drain, reading resumes";

    // A bound no whole answer reaches: what would pass it is dropped, as a line loses a frame.
    session::core uneven({.role = role::target}, {.write_queue_limit = 4100});
    flood_of_resets(uneven, 4100);
    EXPECT_GT(uneven.frames_dropped(), 0u);
}

TEST(SessionCore, AFullReceiveQueueStopsReadingUntilTheApplicationTakesAPacket) {
    session_line s({.receive_queue_limit = 2});
    s.target->takes_packets = false;
    std::vector<bytes> sent;
    for (std::uint32_t i = 0; i < 5; ++i) {
        sent.push_back(numbered_body(i, 64));
        ASSERT_FALSE(s.debugger->send(packet_type::state_manipulate, sent.back()));
    }
    s.run_until([] { return false; }, 10s);
    EXPECT_FALSE(s.target->core().wants_read());
    EXPECT_EQ(s.debugger->finished().size(), 2u) << "the third waits: the target does not read it";
    for (int guard = 0; s.target->taken().size() < sent.size() && guard < 100; ++guard) {
        s.target->take_one();
        s.run_until([] { return false; }, 2s);
    }
    EXPECT_EQ(bodies_of(s.target->taken()), sent) << "each once, in order, nothing lost to the wait";
    EXPECT_EQ(s.debugger->finished(), std::vector<outcome>(5, outcome::acknowledged));
}

TEST(SessionCore, ReconnectionWaitsDoubleUpToTheMaximumAndStartOverWhenAStreamOpens) {
    session::options o;
    o.reconnect_delay_min = 50ms;
    o.reconnect_delay_max = 300ms;
    session::core c({.role = role::target}, o);
    std::vector<timestamp> waits;
    for (int i = 0; i < 5; ++i) waits.push_back(c.link_failed().value());
    EXPECT_EQ(waits, (std::vector<timestamp>{50ms, 100ms, 200ms, 300ms, 300ms}));
    c.stream_opened(1s);
    EXPECT_EQ(c.stream_closed(), timestamp(50ms)) << "a stream that opened starts the backoff over";

    o.reconnect = false;
    session::core once({.role = role::target}, o);
    EXPECT_FALSE(once.link_failed().has_value()) << "without reconnect, the session closes";
    EXPECT_FALSE(once.stream_closed().has_value());
}

TEST(SessionCore, ADebuggerResetsTheLinkOnEveryNewStreamAndATargetWaitsForIt) {
    session::core debugger({.role = role::debugger}, {});
    debugger.stream_opened(0s);
    auto d = drain(debugger);
    ASSERT_EQ(decode_whole(d.queued).packets.size(), 1u);
    EXPECT_EQ(decode_whole(d.queued).packets[0].header.type, packet_type::reset);
    debugger.stream_closed();
    debugger.stream_opened(1s);
    d = drain(debugger);
    ASSERT_EQ(decode_whole(d.queued).packets.size(), 1u) << "a RESET for the new stream too";

    session::core target({.role = role::target}, {});
    target.stream_opened(0s);
    EXPECT_TRUE(drain(target).queued.empty());

    session::core silent({.role = role::debugger, .send_resets = false}, {});
    silent.stream_opened(0s);
    EXPECT_TRUE(drain(silent).queued.empty()) << "resets off (WinDbg's resets=0): nothing sent";
}

TEST(SessionCore, ANewStreamForgetsTheOldStreamsHalfFrameAndItsUnwrittenBytes) {
    session::core c({.role = role::target}, {});
    c.stream_opened(0s);
    drain(c);
    const bytes body = numbered_body(0, 100);
    const bytes frame = data_frame(packet_type::state_manipulate, 0x80800000, body);
    c.bytes_read(std::span(frame).first(30), 1s);  // the old peer went away mid-packet
    drain(c);
    ASSERT_FALSE(c.send(packet_type::state_change64, numbered_body(1, 50), {}, 1s));
    drain(c);
    EXPECT_GT(c.bytes_unwritten(), 0u);
    c.stream_closed();
    EXPECT_EQ(c.bytes_unwritten(), 0u) << "bytes for the old peer are dropped";
    c.stream_opened(2s);
    drain(c);
    c.bytes_read(frame, 2s);
    drain(c);
    ASSERT_TRUE(c.has_received()) << "the new stream's frame is not joined to the old half";
    EXPECT_EQ(c.take_received().body, body);
    EXPECT_FALSE(c.has_received());
}

TEST(SessionCore, ASendWhoseBytesWereLostWithTheStreamGoesOutOnTheNextOne) {
    session_line s;
    s.target->peer_reads = false;
    const bytes body = numbered_body(7, 80);
    ASSERT_FALSE(s.target->send(packet_type::state_change64, body));
    s.target->reopen_stream();  // its frame never left: dropped with the stream
    s.target->resume_peer_reads();
    ASSERT_TRUE(s.run_until([&] { return !s.target->finished().empty(); }));
    EXPECT_EQ(s.target->finished(), std::vector<outcome>{outcome::acknowledged}) << "re-sent by the endpoint's timer";
    EXPECT_EQ(bodies_of(s.debugger->taken()), std::vector<bytes>{body});
}

TEST(SessionCore, AbandonedSendsEndWithoutAnEvent) {
    session::core c({.role = role::target}, {});
    c.stream_opened(0s);
    drain(c);
    ASSERT_FALSE(c.send(packet_type::state_change64, numbered_body(0, 50), {}, 0s));
    ASSERT_FALSE(c.send(packet_type::state_change64, numbered_body(1, 50), {}, 0s));
    drain(c);
    c.abandon_sends();
    c.cancel_send(1s);  // the endpoint's send ends; nobody is told
    const auto d = drain(c);
    EXPECT_TRUE(d.finished.empty());
    c.on_time(10s);
    EXPECT_TRUE(drain(c).finished.empty()) << "and the queued one never starts";
}

}  // namespace
