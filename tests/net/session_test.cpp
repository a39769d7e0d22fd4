// Sessions over real OS objects: 10,000 packets both ways on every transport, a peer that vanishes
// mid-packet and comes back, acknowledgements leaving with answers and surviving close(), every
// completion-token style, the blocking API, the tap, and many sessions on one io_context.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <stdexcept>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>
#include <asio/bind_executor.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include "kdcom/net/memory_link.hpp"
#include "support/decode_helpers.hpp"
#include "support/net_pair.hpp"
#include "support/session_checks.hpp"
#include "support/session_traffic.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;
using wire::packet_type;

class SessionOverTransport : public ::testing::TestWithParam<transport_kind> {};

TEST_P(SessionOverTransport, TenThousandPacketsEachWayArriveOnceInOrder) {
    session_pair pair(GetParam(), streaming(), streaming());
    traffic down, up;
    down.start(pair.debugger, pair.target, 10000);
    up.start(pair.target, pair.debugger, 10000);
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (!(down.done() && up.done()) && std::chrono::steady_clock::now() < deadline) pair.io.run_for(50ms);
    expect_delivered(down, up, 0);
}

TEST_P(SessionOverTransport, APeerThatVanishesMidPacketComesBackAndTheSessionCompletes) {
    net::session_options options;
    options.reconnect_delay_min = 10ms;
    session_pair pair(GetParam(), streaming(), streaming(), options);
    traffic down, up;
    down.start(pair.debugger, pair.target, 2000);
    up.start(pair.target, pair.debugger, 2000);
    pair.debugger_link->control->cut_after_bytes = 300'000;  // about a third of the way
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (!(down.done() && up.done()) && std::chrono::steady_clock::now() < deadline) pair.io.run_for(50ms);
    EXPECT_EQ(pair.debugger_link->control->cuts.load(), 1) << "the connection was cut mid-packet";
    expect_delivered(down, up, 1);
    EXPECT_GE(pair.target->protocol().stats().resets_received, 1u) << "the debugger ran the handshake again";
}

INSTANTIATE_TEST_SUITE_P(Transports, SessionOverTransport,
                         ::testing::Values(transport_kind::tcp, transport_kind::unix_socket, transport_kind::fifo,
                                           transport_kind::serial_pty, transport_kind::shm),
                         [](const ::testing::TestParamInfo<transport_kind>& test) { return to_string(test.param); });

TEST(Session, MemoryLinksCarryTenThousandPacketsEachWayAndEndCleanly) {
    session_pair pair(transport_kind::memory, streaming(), streaming());
    traffic down, up;
    down.start(pair.debugger, pair.target, 10000);
    up.start(pair.target, pair.debugger, 10000);
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!(down.done() && up.done()) && std::chrono::steady_clock::now() < deadline) pair.io.run_for(50ms);
    expect_delivered(down, up, 0);
    // A memory connection is made once: after it closes, the other side's reads end and it cannot
    // open another.
    bool ended = false;
    pair.target->async_receive([&](std::error_code ec, net::received_packet) { ended = static_cast<bool>(ec); });
    pair.debugger->close();
    pair.io.run_for(100ms);
    EXPECT_FALSE(ended) << "the session waits for a peer that may come; it is not closed";
    pair.target->close();
    pair.io.run_for(50ms);
    EXPECT_TRUE(ended);
}

// How the debugger answers in debugger_writes_answering().
enum class answer_timing { from_the_handler, a_turn_later, two_ms_later };

// The target sends `count` packets, each after the answer to the one before; the debugger answers
// each as `timing` says. Returns the writes the debugger made.
long debugger_writes_answering(int count, answer_timing timing, net::session_options options = {}) {
    session_pair pair(transport_kind::memory, {}, {}, options);
    asio::steady_timer later(pair.io);
    std::function<void()> answer = [&] {
        pair.debugger->async_receive([&](std::error_code ec, net::received_packet p) {
            if (ec) return;
            auto reply = [&, body = std::move(p.body)](std::error_code = {}) {
                pair.debugger->async_send(packet_type::state_manipulate, body, {}, [](std::error_code) {});
            };
            switch (timing) {
            case answer_timing::from_the_handler: reply(); break;
            case answer_timing::a_turn_later: asio::post(pair.io, reply); break;
            case answer_timing::two_ms_later:
                later.expires_after(2ms);
                later.async_wait(reply);
                break;
            }
            answer();
        });
    };
    answer();
    int answered = 0;
    std::function<void()> ask = [&] {
        pair.target->async_send(packet_type::state_change64, manipulate_like(0x3030), {}, [](std::error_code) {});
        pair.target->async_receive([&](std::error_code ec, net::received_packet) {
            if (ec) return;
            if (++answered < count) ask();
        });
    };
    ask();
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (answered < count && std::chrono::steady_clock::now() < deadline) pair.io.run_for(20ms);
    EXPECT_EQ(answered, count);
    return pair.debugger_link->control->writes.load();
}

TEST(Session, AnAnswerFromTheReceiveHandlerLeavesWithTheAcknowledgementInOneWrite) {
    constexpr int count = 200;
    const long at_once = debugger_writes_answering(count, answer_timing::from_the_handler);
    const long later = debugger_writes_answering(count, answer_timing::a_turn_later);
    // The debugger's RESET at the start is the only write besides one per exchange.
    EXPECT_LE(at_once, count + 3) << "each acknowledgement leaves with the answer after it";
    EXPECT_GE(later, 2 * count) << "an answer that comes later is a write of its own";
}

TEST(Session, WithAnAckDelayAnAcknowledgementWaitsForAnAnswerThatTakesTime) {
    constexpr int count = 20;
    net::session_options options;
    options.ack_delay = 300ms;
    const auto started = std::chrono::steady_clock::now();
    const long writes = debugger_writes_answering(count, answer_timing::two_ms_later, options);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 3s) << "the answer ends the wait, not the delay";
    EXPECT_LE(writes, count + 3) << "each acknowledgement waited for the answer after it";
    EXPECT_GE(debugger_writes_answering(count, answer_timing::two_ms_later), 2 * count)
        << "without the delay, an acknowledgement goes at once";
}

TEST(Session, AnAcknowledgementWithNoAnswerLeavesWhenTheAckDelayIsOver) {
    net::session_options options;
    options.ack_delay = 100ms;
    session_pair pair(transport_kind::memory, {}, {}, options);
    pair.io.run_for(50ms);  // connected, the reset handshake done
    pair.debugger->async_receive([](std::error_code, net::received_packet) {});  // taken, never answered
    const auto started = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::duration> acknowledged_after;
    pair.target->async_send(packet_type::state_change64, manipulate_like(0x3030), {}, [&](std::error_code ec) {
        EXPECT_FALSE(ec) << ec.message();
        acknowledged_after = std::chrono::steady_clock::now() - started;
    });
    const auto deadline = started + 5s;
    while (!acknowledged_after && std::chrono::steady_clock::now() < deadline) pair.io.run_for(10ms);
    ASSERT_TRUE(acknowledged_after.has_value()) << "the held acknowledgement never left";
    EXPECT_GE(*acknowledged_after, 100ms) << "it was held for the delay";
    EXPECT_EQ(pair.target->protocol().stats().retransmissions, 0u) << "and left well before the peer's timeout";
}

TEST(Session, HandlersNeverRunInsideTheCallThatStartedTheirOperation) {
    session_pair pair(transport_kind::memory, {}, {});
    // Three packets wait, undelivered, in the debugger's queue.
    for (int i = 0; i < 3; ++i)
        pair.target->async_send(packet_type::state_change64, manipulate_like(0x3030), {}, [](std::error_code) {});
    pair.io.run_for(100ms);
    int depth = 0, max_depth = 0, received = 0;
    std::function<void()> take = [&] {
        ++depth;
        pair.debugger->async_receive([&](std::error_code ec, net::received_packet) {
            max_depth = std::max(max_depth, depth);
            if (ec) return;
            if (++received < 3) take();
        });
        --depth;
    };
    asio::post(pair.io, [&] { take(); });
    pair.io.run_for(100ms);
    EXPECT_EQ(received, 3);
    EXPECT_EQ(max_depth, 0) << "a receive handler ran inside async_receive";
    bool ran = false;
    asio::post(pair.io, [&] {
        pair.debugger->close();
        pair.debugger->async_send(packet_type::state_manipulate, manipulate_like(0x3146), {}, [&](std::error_code) { ran = true; });
        EXPECT_FALSE(ran) << "a send handler ran inside async_send";
    });
    pair.io.run_for(50ms);
    EXPECT_TRUE(ran);
}

// A send started on the session's own thread while the endpoint is free goes straight into the
// endpoint's frame; one behind it is queued with a copy. Either way the caller's buffer is free to
// change once async_send returns, the handler runs later, and the packets arrive in order.
TEST(Session, SendsOnTheSessionsThreadOweNothingToTheCallersBuffers) {
    session_pair pair(transport_kind::memory, {}, {});
    std::vector<net::received_packet> got;
    std::function<void()> take = [&] {
        pair.target->async_receive([&](std::error_code ec, net::received_packet p) {
            if (ec) return;
            got.push_back(std::move(p));
            take();
        });
    };
    take();
    pair.io.run_for(50ms);  // connected, the reset handshake done, nothing being sent
    const bytes first = manipulate_like(0x3131), second = manipulate_like(0x3132);
    const bytes data(1000, 0x5A);
    int completed = 0;
    asio::post(pair.io, [&] {
        bytes header = first, payload = data, next = second;
        pair.debugger->async_send(packet_type::state_manipulate, header, payload, [&](std::error_code ec) { completed += !ec; });
        pair.debugger->async_send(packet_type::state_manipulate, next, {}, [&](std::error_code ec) { completed += !ec; });
        EXPECT_EQ(completed, 0) << "a send handler ran inside async_send";
        std::fill(header.begin(), header.end(), 0xEE);
        std::fill(payload.begin(), payload.end(), 0xEE);
        std::fill(next.begin(), next.end(), 0xEE);
    });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while ((completed < 2 || got.size() < 2) && std::chrono::steady_clock::now() < deadline) pair.io.run_for(10ms);
    EXPECT_EQ(completed, 2);
    ASSERT_EQ(got.size(), 2u);
    bytes expected = first;
    expected.insert(expected.end(), data.begin(), data.end());
    EXPECT_TRUE(got[0].body == expected) << "the first packet went out as it was when async_send was called";
    EXPECT_TRUE(got[1].body == second);
}

// Handlers completed by arriving bytes run right there when their executor is the session's
// io_context, and otherwise on their own executor: a strand's inside that strand, another
// io_context's only when that io_context runs.
TEST(Session, HandlersBoundToOtherExecutorsRunOnThem) {
    session_pair pair(transport_kind::memory, {}, {});
    pair.io.run_for(50ms);  // connected, the reset handshake done
    auto strand = asio::make_strand(pair.io);
    asio::io_context elsewhere;
    bool plain_on_thread = false, on_strand = false, elsewhere_ran = false, elsewhere_on_its_thread = false;
    int received = 0;
    pair.target->async_receive([&](std::error_code ec, net::received_packet) {
        received += !ec;
        plain_on_thread = pair.io.get_executor().running_in_this_thread();
    });
    pair.target->async_receive(asio::bind_executor(strand, [&](std::error_code ec, net::received_packet) {
        received += !ec;
        on_strand = strand.running_in_this_thread();
    }));
    pair.target->async_receive(asio::bind_executor(elsewhere, [&](std::error_code ec, net::received_packet) {
        received += !ec;
        elsewhere_ran = true;
        elsewhere_on_its_thread = elsewhere.get_executor().running_in_this_thread();
    }));
    for (int i = 0; i < 3; ++i)
        pair.debugger->async_send(packet_type::state_manipulate, manipulate_like(0x3131), {}, [](std::error_code) {});
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (received < 2 && std::chrono::steady_clock::now() < deadline) pair.io.run_for(10ms);
    pair.io.run_for(50ms);  // the third packet arrives; its handler waits for `elsewhere`
    EXPECT_EQ(received, 2);
    EXPECT_TRUE(plain_on_thread);
    EXPECT_TRUE(on_strand) << "a handler bound to a strand runs inside it";
    EXPECT_FALSE(elsewhere_ran) << "a handler bound to another io_context waits for it";
    elsewhere.run_for(50ms);
    EXPECT_EQ(received, 3);
    EXPECT_TRUE(elsewhere_on_its_thread);
}

// A session pair on `ex` whose debugger's receive handler throws once; checks the session goes on.
void expect_session_survives_a_throwing_handler(asio::io_context& io, const asio::any_io_executor& ex) {
    auto [target_link, debugger_link] = net::make_memory_links(ex);
    auto target = net::session::create(std::move(target_link), {.role = role::target});
    auto debugger = net::session::create(std::move(debugger_link), {.role = role::debugger});
    target->start();
    debugger->start();
    int received = 0;
    std::function<void()> take = [&] {
        debugger->async_receive([&](std::error_code ec, net::received_packet) {
            if (ec) return;
            take();
            if (++received == 1) throw std::runtime_error("the application's handler failed");
        });
    };
    take();
    io.run_for(50ms);  // connected, the reset handshake done
    int acknowledged = 0;
    for (int i = 0; i < 3; ++i)
        target->async_send(packet_type::state_change64, manipulate_like(0x3030), {}, [&](std::error_code ec) { acknowledged += !ec; });
    int thrown = 0;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while ((received < 3 || acknowledged < 3) && std::chrono::steady_clock::now() < deadline) {
        try {
            io.run_for(20ms);
        } catch (const std::runtime_error&) {
            ++thrown;  // as from any handler: io_context::run() passes it on; the caller runs again
        }
    }
    EXPECT_EQ(thrown, 1);
    EXPECT_EQ(received, 3) << "packets after the throw were still delivered";
    EXPECT_EQ(acknowledged, 3) << "and acknowledged";
    EXPECT_EQ(target->protocol().stats().retransmissions, 0u) << "the acknowledgement pending at the throw still left";
    asio::post(ex, [&] {
        debugger->close();
        target->close();
    });
    io.run_for(50ms);
}

TEST(Session, AHandlerThatThrowsLeavesTheSessionWorking) {
    asio::io_context io;
    expect_session_survives_a_throwing_handler(io, io.get_executor());
}

TEST(Session, AHandlerThatThrowsOnTheSessionsStrandLeavesTheSessionWorking) {
    // On a strand the handler runs inside the session's own call stack (Asio's io_context would
    // catch the exception on the way; a strand lets it through the session).
    asio::io_context io;
    expect_session_survives_a_throwing_handler(io, asio::make_strand(io));
}

// A session whose link runs on a strand (given to it as a type-erased executor) does its work
// inside that strand, even when the application calls it from a plain handler of the same
// io_context, outside the strand: the shortcuts for an io_context's own thread must not take a
// strand for the io_context under it.
TEST(Session, OnAStrandItWorksOnlyInsideTheStrand) {
    asio::io_context io;
    const auto strand = asio::make_strand(io);
    auto [target_link, debugger_link] = net::make_memory_links(asio::any_io_executor(strand));
    auto target = net::session::create(std::move(target_link), {.role = role::target});
    auto debugger = net::session::create(std::move(debugger_link), {.role = role::debugger});
    int outside_strand = 0, taps = 0;
    debugger->set_tap([&](net::direction, timestamp, std::span<const std::uint8_t>) {
        ++taps;
        outside_strand += !strand.running_in_this_thread();
    });
    asio::dispatch(strand, [&] {
        target->start();
        debugger->start();
    });
    int received = 0, sent = 0;
    std::function<void()> take = [&] {
        target->async_receive(asio::bind_executor(strand, [&](std::error_code ec, net::received_packet) {
            if (!ec && ++received < 3) take();
        }));
    };
    asio::dispatch(strand, take);
    io.run_for(50ms);  // connected, the reset handshake done
    for (int i = 0; i < 3; ++i)
        asio::post(io, [&] {  // a plain handler on the io_context's thread, outside the strand
            debugger->async_send(packet_type::state_manipulate, manipulate_like(0x3131), {},
                                 asio::bind_executor(strand, [&](std::error_code ec) { sent += !ec; }));
        });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while ((received < 3 || sent < 3) && std::chrono::steady_clock::now() < deadline) io.run_for(10ms);
    EXPECT_EQ(received, 3);
    EXPECT_EQ(sent, 3);
    EXPECT_GT(taps, 0);
    EXPECT_EQ(outside_strand, 0) << "bytes moved outside the session's strand";
    asio::dispatch(strand, [&] {
        debugger->close();
        target->close();
    });
    io.run_for(50ms);
}

TEST(Session, AnAcknowledgementQueuedWhenTheSessionClosesStillReachesThePeer) {
    session_pair pair(transport_kind::memory, {}, {});
    // The target takes one packet and closes at once, before its acknowledgement had a turn to
    // leave with an answer.
    pair.target->async_receive([&](std::error_code ec, net::received_packet) {
        if (!ec) pair.target->close();
    });
    std::optional<std::error_code> sent;
    pair.debugger->async_send(packet_type::state_manipulate, manipulate_like(0x3146), {},
                              [&](std::error_code ec) { sent = ec; });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!sent && std::chrono::steady_clock::now() < deadline) pair.io.run_for(20ms);
    ASSERT_TRUE(sent.has_value()) << "the send was never acknowledged";
    EXPECT_FALSE(*sent) << sent->message();
    EXPECT_EQ(pair.debugger->protocol().stats().retransmissions, 0u);
}

TEST(Session, ClosingGivesUpOnWritesAPeerNeverTakes) {
    net::session_options options;
    options.close_linger = 100ms;
    session_pair pair(transport_kind::memory, {}, {}, options);
    pair.io.run_for(50ms);  // connected, the reset handshake done
    bool target_saw_close = false;
    pair.target->set_notice_handler([&](const net::session_notice& n) {
        if (n.kind == net::session_notice::what::stream_closed) target_saw_close = true;
    });
    pair.debugger_link->control->hold_writes = true;
    pair.debugger->async_send(packet_type::state_manipulate, manipulate_like(0x3146), {}, [](std::error_code) {});
    pair.io.run_for(20ms);
    pair.debugger->close();
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!target_saw_close && std::chrono::steady_clock::now() < deadline) pair.io.run_for(20ms);
    EXPECT_TRUE(target_saw_close) << "the stream closed although its last write never completed";
}

TEST(Session, CompletesThroughFuturesAndCoroutinesToo) {
    session_pair pair(transport_kind::tcp, {}, {});
    const bytes request = manipulate_like(0x3146);
    auto sent = pair.debugger->async_send(packet_type::state_manipulate, request, {}, asio::use_future);
    bool replied = false;
    asio::co_spawn(
        pair.io,
        [&]() -> asio::awaitable<void> {
            auto p = co_await pair.target->async_receive(asio::use_awaitable);
            EXPECT_EQ(p.body, request);
            co_await pair.target->async_send(packet_type::state_manipulate, p.body, {}, asio::use_awaitable);
            replied = true;
        },
        asio::detached);
    auto reply = pair.debugger->async_receive(asio::use_future);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!(replied && reply.wait_for(0s) == std::future_status::ready) && std::chrono::steady_clock::now() < deadline)
        pair.io.run_for(20ms);
    ASSERT_EQ(sent.wait_for(0s), std::future_status::ready);
    EXPECT_NO_THROW(sent.get());
    ASSERT_EQ(reply.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(reply.get().body, request);
}

TEST(Session, TheBlockingApiSendsReceivesAndTimesOut) {
    session_pair pair(transport_kind::unix_socket, {}, {});
    auto guard = asio::make_work_guard(pair.io);
    std::thread runner([&] { pair.io.run(); });
    const bytes state_change = manipulate_like(0x3030);
    EXPECT_FALSE(pair.target->send(packet_type::state_change64, state_change, {}, 5000ms));
    std::error_code ec;
    auto p = pair.debugger->receive(5000ms, ec);
    ASSERT_TRUE(p.has_value()) << ec.message();
    EXPECT_EQ(p->body, state_change);
    const auto started = std::chrono::steady_clock::now();
    EXPECT_FALSE(pair.debugger->receive(100ms, ec).has_value());
    EXPECT_EQ(ec, net::session_errc::timed_out);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
    // A packet that arrives after a timed-out wait is not lost.
    EXPECT_FALSE(pair.target->send(packet_type::debug_io, state_change, {}, 5000ms));
    p = pair.debugger->receive(5000ms, ec);
    EXPECT_TRUE(p.has_value()) << ec.message();
    asio::post(pair.io, [&] {
        pair.debugger->close();
        pair.target->close();
    });
    guard.reset();
    runner.join();
}

TEST(Session, TheTapSeesEveryByteInBothDirections) {
    session_pair pair(transport_kind::tcp, {}, {});
    bytes to_peer, from_peer;
    pair.debugger->set_tap([&](net::direction d, timestamp, std::span<const std::uint8_t> b) {
        append(d == net::direction::to_peer ? to_peer : from_peer, b);
    });
    traffic down;
    down.start(pair.debugger, pair.target, 20);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!down.done() && std::chrono::steady_clock::now() < deadline) pair.io.run_for(20ms);
    ASSERT_TRUE(down.done());
    const auto written = decode_whole(to_peer);
    std::size_t data = 0;
    for (const auto& p : written.packets) data += p.header.is_data();
    EXPECT_EQ(data, 20u) << "every data packet the debugger wrote";
    EXPECT_GE(decode_whole(from_peer).packets.size(), 20u) << "and at least the target's ACKs";
}

TEST(Session, ATcpListenerRefusesASecondDebuggerWhileOneIsAttached) {
    session_pair pair(transport_kind::tcp, {}, {});
    traffic down;
    down.start(pair.debugger, pair.target, 5);
    while (!down.done()) pair.io.run_for(20ms);
    asio::ip::tcp::socket intruder(pair.io);
    intruder.connect({asio::ip::make_address("127.0.0.1"), pair.listener->local_port()});
    std::array<std::uint8_t, 16> buffer{};
    std::error_code read_error;
    bool read_done = false;
    intruder.async_read_some(asio::buffer(buffer), [&](std::error_code ec, std::size_t) {
        read_error = ec;
        read_done = true;
    });
    while (!read_done) pair.io.run_for(20ms);
    EXPECT_TRUE(read_error == asio::error::eof || read_error == asio::error::connection_reset) << read_error.message();
    EXPECT_EQ(pair.listener->refused(), 1u);
    traffic more;  // the attached session is untouched (the other way: `down` still awaits the target)
    more.start(pair.target, pair.debugger, 5);
    while (!more.done()) pair.io.run_for(20ms);
    EXPECT_TRUE(check_deliveries(more.sent, more.received).complete);
}

TEST(Session, UnixListenerSocketFilesArePrivateAndStaleOnesAreReplaced) {
    asio::io_context io;
    scratch_dir dir;
    const std::string path = dir.path + "/kd.sock";
    std::error_code ec;
    {
        auto first = net::make_unix_listener(io.get_executor(), path, ec);
        ASSERT_FALSE(ec) << ec.message();
        struct stat st {};
        ASSERT_EQ(::stat(path.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600u);
        auto second = net::make_unix_listener(io.get_executor(), path, ec);
        EXPECT_EQ(ec, std::errc::address_in_use) << "a live listener's socket is left alone";
        EXPECT_EQ(second, nullptr);
    }
    // A socket file left behind by a process that died (bound, never unlinked, nobody listening).
    {
        asio::local::stream_protocol::acceptor dead(io);
        dead.open(asio::local::stream_protocol());
        dead.bind(asio::local::stream_protocol::endpoint(path));
        dead.close();
    }
    ec.clear();
    auto replacement = net::make_unix_listener(io.get_executor(), path, ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_NE(replacement, nullptr);
}

TEST(Session, AUnixListenerRemovesOnlyTheSocketFileItMade) {
    asio::io_context io;
    scratch_dir dir;
    const std::string path = dir.path + "/kd.sock";
    std::error_code ec;
    auto first = net::make_unix_listener(io.get_executor(), path, ec);
    ASSERT_FALSE(ec) << ec.message();
    // Someone removes the first instance's socket file, and a second instance binds the path.
    ASSERT_EQ(::unlink(path.c_str()), 0);
    auto second = net::make_unix_listener(io.get_executor(), path, ec);
    ASSERT_FALSE(ec) << ec.message();
    first->close();
    first.reset();
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::symlink_status(path))) << "the second instance's socket stays";
    asio::local::stream_protocol::socket client(io);
    client.connect(asio::local::stream_protocol::endpoint(path), ec);
    EXPECT_FALSE(ec) << "and still reaches it: " << ec.message();
    second->close();
    EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(path))) << "its own is removed";
}

TEST(Session, APeerThatSendsAndNeverReadsCannotGrowTheWriteQueue) {
    asio::io_context io;
    scratch_dir dir;
    const std::string path = dir.path + "/kd.sock";
    std::error_code ec;
    auto listener = net::make_unix_listener(io.get_executor(), path, ec);
    ASSERT_FALSE(ec) << ec.message();
    net::session_options options;
    options.write_queue_limit = 4096;
    auto target = net::session::create(std::move(listener), {.role = role::target}, options);
    target->start();
    // The peer: KD_RESETs as fast as they go (each asks for a RESET back), nothing read.
    asio::local::stream_protocol::socket peer(io);
    peer.connect(asio::local::stream_protocol::endpoint(path));
    peer.non_blocking(true);
    const bytes reset = control_frame(wire::packet_type::reset, 0x80800000);
    bytes burst;
    for (int i = 0; i < 1024; ++i) burst.insert(burst.end(), reset.begin(), reset.end());
    bool peer_blocked = false;
    const auto end = std::chrono::steady_clock::now() + 2s;
    while (std::chrono::steady_clock::now() < end && !peer_blocked) {
        std::error_code send_error;
        peer.send(asio::buffer(burst), 0, send_error);
        // Once the session stops reading, the socket's buffer fills and stays full.
        if (send_error == asio::error::would_block) {
            io.run_for(20ms);
            peer.send(asio::buffer(burst), 0, send_error);
            peer_blocked = send_error == asio::error::would_block;
        }
        io.poll();
    }
    // (Without the bound the session keeps up with the peer and its answers pile up unwritten.)
    EXPECT_TRUE(peer_blocked) << "the session stopped reading the peer";
    target->close();
    io.run_for(50ms);
}

TEST(Session, ManySessionsShareOneIoContext) {
    asio::io_context io;
    constexpr int pairs = 50;
    std::vector<std::shared_ptr<net::session>> sessions;
    std::vector<std::unique_ptr<traffic>> flows;
    for (int i = 0; i < pairs; ++i) {
        std::error_code ec;
        auto l = net::make_tcp_listener(io.get_executor(), "127.0.0.1", 0, ec);
        ASSERT_FALSE(ec);
        auto client = net::make_tcp_client(io.get_executor(), "127.0.0.1", l->local_port());
        auto t = net::session::create(std::move(l), {.role = role::target});
        auto d = net::session::create(std::move(client), {.role = role::debugger});
        t->start();
        d->start();
        flows.push_back(std::make_unique<traffic>());
        flows.back()->start(d, t, 20);
        sessions.push_back(t);
        sessions.push_back(d);
    }
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    auto all_done = [&] {
        for (auto& f : flows)
            if (!f->done()) return false;
        return true;
    };
    while (!all_done() && std::chrono::steady_clock::now() < deadline) io.run_for(20ms);
    EXPECT_TRUE(all_done());
    for (auto& s : sessions) s->close();
    io.run_for(50ms);
}
}  // namespace
