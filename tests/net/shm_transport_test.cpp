// The shared-memory transport over real memfds, eventfds and processes: what the host hands a guest,
// whole messages of both kinds, byte reads in pieces, one guest at a time, and a host that a stalled,
// dead, confused or scribbling guest cannot hang or harm.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <random>
#include <thread>
#include <tuple>

#include <asio/steady_timer.hpp>

#include "support/net_pair.hpp"
#include "support/raw_shm_guest.hpp"
#include "support/session_checks.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;

// A host listener and a guest link for one name, on one io_context.
struct host_and_guest {
    asio::io_context io;
    std::string name = unique_shm_name();
    std::unique_ptr<net::listener> host;
    std::unique_ptr<net::link> guest;

    explicit host_and_guest(net::shm_options options = {}) {
        std::error_code ec;
        host = net::make_shm_host(io.get_executor(), name, options, ec);
        if (!host) throw std::system_error(ec);
        guest = net::make_shm_guest(io.get_executor(), name, options);
    }

    // Opens `link` and runs until it hands over a stream or fails.
    std::unique_ptr<net::shm_connection> open(net::link& link, std::error_code* error = nullptr) {
        std::unique_ptr<net::byte_stream> stream;
        bool done = false;
        std::error_code ec;
        link.async_open([&](std::error_code e, std::unique_ptr<net::byte_stream> s) {
            ec = e;
            stream = std::move(s);
            done = true;
        });
        run_until([&] { return done; });
        if (error) *error = ec;
        return std::unique_ptr<net::shm_connection>(static_cast<net::shm_connection*>(stream.release()));
    }

    template <class Predicate>
    bool run_until(Predicate done, std::chrono::milliseconds limit = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
        return done();
    }
};

// Opens host and guest connections together (the host hands over a stream once a guest connects).
std::pair<std::unique_ptr<net::shm_connection>, std::unique_ptr<net::shm_connection>> connect(host_and_guest& hg) {
    std::unique_ptr<net::byte_stream> host_side;
    hg.host->async_open([&](std::error_code, std::unique_ptr<net::byte_stream> s) { host_side = std::move(s); });
    auto guest_side = hg.open(*hg.guest);
    hg.run_until([&] { return host_side != nullptr; });
    return {std::unique_ptr<net::shm_connection>(static_cast<net::shm_connection*>(host_side.release())),
            std::move(guest_side)};
}

TEST(ShmTransport, TheHostHandsEachGuestAPrivateSealedRegionOfTheSizeItChose) {
    net::shm_options options;
    options.region.ring_size = 8192;
    options.region.max_message = 2048;
    host_and_guest hg(options);
    struct stat st {};
    ASSERT_EQ(::stat(net::shm_rendezvous_path(hg.name).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "only this user may attach";

    std::unique_ptr<net::byte_stream> host_side;
    hg.host->async_open([&](std::error_code, std::unique_ptr<net::byte_stream> s) { host_side = std::move(s); });
    raw_shm_guest raw(hg.name);  // connected (queued); the host accepts it when its loop runs
    hg.run_until([&] { return host_side != nullptr; });
    ASSERT_TRUE(host_side);
    raw.attach();
    EXPECT_EQ(raw.size, KDCOM_SHM_REGION_SIZE(8192u));
    kdcom::shm::region_parameters p;
    ASSERT_FALSE(kdcom::shm::region::read_parameters(raw.region(), p));
    EXPECT_EQ(p.ring_size, 8192u);
    EXPECT_EQ(p.max_message, 2048u);
    EXPECT_EQ(p.generation, 1u);
    const int seals = ::fcntl(raw.memory, F_GET_SEALS);
    EXPECT_TRUE(seals & F_SEAL_SHRINK) << "a guest must not be able to shrink the region under the host";
    EXPECT_NE(::ftruncate(raw.memory, 0), 0);
}

TEST(ShmTransport, WholeMessagesOfBothKindsCrossBothWaysInOrderThroughASmallRing) {
    net::shm_options options;
    options.region.ring_size = 4096;  // small, so that both sides often find it full
    options.region.max_message = 1024;
    host_and_guest hg(options);
    auto [host, guest] = connect(hg);
    ASSERT_TRUE(host && guest);

    constexpr int count = 3000;
    std::mt19937 rng(7);
    std::vector<bytes> to_host, to_guest;
    for (int i = 0; i < count; ++i) {
        to_host.push_back(numbered_body(static_cast<std::uint32_t>(i), rng() % 1025));
        to_guest.push_back(numbered_body(static_cast<std::uint32_t>(i), rng() % 1025));
    }
    to_host[5].clear();  // an empty message is a message too
    struct pump {
        net::shm_connection* from;
        net::shm_connection* to;
        std::vector<bytes>* messages;
        int sent = 0, received = 0;
        bool failed = false;
        bytes buffer = bytes(1024);
        void send() {
            if (sent == static_cast<int>(messages->size())) return;
            const std::uint16_t kind = sent % 3 ? KDCOM_SHM_KD_PDU : KDCOM_SHM_KDCOM_BYTES;
            from->async_send_message(kind, (*messages)[static_cast<std::size_t>(sent)], [this](std::error_code ec, std::size_t) {
                failed |= static_cast<bool>(ec);
                ++sent;
                if (!ec) send();
            });
        }
        void receive() {
            to->async_receive_message(buffer, [this](std::error_code ec, std::uint16_t kind, std::size_t n) {
                const auto& expected = (*messages)[static_cast<std::size_t>(received)];
                const std::uint16_t expected_kind = received % 3 ? KDCOM_SHM_KD_PDU : KDCOM_SHM_KDCOM_BYTES;
                if (ec || kind != expected_kind || bytes(buffer.begin(), buffer.begin() + static_cast<long>(n)) != expected) {
                    failed = true;
                    return;
                }
                if (++received < static_cast<int>(messages->size())) receive();
            });
        }
    };
    pump down{host.get(), guest.get(), &to_guest}, up{guest.get(), host.get(), &to_host};
    // Senders first, alone for a while: they fill the rings and must wait for room.
    for (auto* p : {&down, &up}) p->send();
    hg.run_until([] { return false; }, 20ms);
    for (auto* p : {&down, &up}) p->receive();
    EXPECT_TRUE(hg.run_until([&] { return down.received == count && up.received == count; }, 60s));
    EXPECT_FALSE(down.failed || up.failed);
    EXPECT_EQ(down.received, count);
    EXPECT_EQ(up.received, count);
    EXPECT_GT(host->stats().waits_for_room + guest->stats().waits_for_room, 0u) << "the ring filled at times";

    const bytes too_big(1025);
    std::error_code ec;
    bool done = false;
    host->async_send_message(KDCOM_SHM_KD_PDU, too_big, [&](std::error_code e, std::size_t) {
        ec = e;
        done = true;
    });
    hg.run_until([&] { return done; });
    EXPECT_EQ(ec, std::errc::message_size);
}

// A ping-pong of messages; returns how many doorbell signals each side sent.
std::pair<std::uint64_t, std::uint64_t> ping_pong(net::shm_options options, int rounds) {
    host_and_guest hg(options);
    auto [host, guest] = connect(hg);
    bytes host_buffer(host->max_message()), guest_buffer(guest->max_message());
    const bytes ping(100, 1);
    int done = 0;
    // Each side's receive is waiting before the other side sends to it.
    std::function<void()> host_receive = [&] {
        host->async_receive_message(host_buffer, [&](std::error_code ec, std::uint16_t, std::size_t) {
            if (ec) return;
            host_receive();
            host->async_send_message(KDCOM_SHM_KD_PDU, ping, [](std::error_code, std::size_t) {});
        });
    };
    std::function<void()> guest_receive = [&] {
        guest->async_receive_message(guest_buffer, [&](std::error_code ec, std::uint16_t, std::size_t) {
            if (ec || ++done == rounds) return;
            guest_receive();
            guest->async_send_message(KDCOM_SHM_KD_PDU, ping, [](std::error_code, std::size_t) {});
        });
    };
    host_receive();
    guest_receive();
    hg.run_until([] { return false; }, 5ms);  // both asleep, or polling
    guest->async_send_message(KDCOM_SHM_KD_PDU, ping, [](std::error_code, std::size_t) {});
    EXPECT_TRUE(hg.run_until([&] { return done == rounds; }));
    return {host->stats().doorbells_rung, guest->stats().doorbells_rung};
}

TEST(ShmTransport, ASideThatPollsIsSentNoSignalsAndASleepingOneIsWoken) {
    net::shm_options polling;  // the default: poll for a while after each message
    const auto [host_polling, guest_polling] = ping_pong(polling, 1000);
    EXPECT_LT(host_polling + guest_polling, 20u) << "a conversation in full swing needs no doorbells";

    net::shm_options sleeping;
    sleeping.poll_window = {};  // sleep at once: every message must wake its receiver
    const auto [host_sleeping, guest_sleeping] = ping_pong(sleeping, 1000);
    EXPECT_GE(host_sleeping, 990u);
    EXPECT_GE(guest_sleeping, 990u);
}

// A host and a guest, the host having received one call and told that the guest awaits its answer.
struct awaited_host {
    host_and_guest hg;
    std::unique_ptr<net::shm_connection> host, guest;
    bytes host_buffer, guest_buffer;
    const bytes call = bytes(40, 7);
    int host_got = 0, guest_got = 0;

    explicit awaited_host(net::shm_options options) : hg(options) {
        std::tie(host, guest) = connect(hg);
        host_buffer.resize(host->max_message());
        guest_buffer.resize(guest->max_message());
        host_receive();
        guest_send();
        EXPECT_TRUE(hg.run_until([&] { return host_got == 1; }));
        host->peer_awaits_answer();
        host_receive();
    }
    void host_receive() {
        host->async_receive_message(host_buffer, [&](std::error_code ec, std::uint16_t, std::size_t) { host_got += !ec; });
    }
    void guest_send() { guest->async_send_message(KDCOM_SHM_KD_PDU, call, [](std::error_code, std::size_t) {}); }
    // As a message, or as bytes written at once (write_now, which runs no pump).
    void answer(bool now) {
        const int before = guest_got;
        guest->async_receive_message(guest_buffer, [&](std::error_code ec, std::uint16_t, std::size_t) { guest_got += !ec; });
        if (now) EXPECT_EQ(host->write_now(call), call.size());
        else host->async_send_message(KDCOM_SHM_KD_PDU, call, [](std::error_code, std::size_t) {});
        EXPECT_TRUE(hg.run_until([&] { return guest_got == before + 1; }));
    }
};

TEST(ShmTransport, ASideWhosePeerAwaitsItsAnswerSleepsAndACallOutOfTurnStillWakesIt) {
    net::shm_options long_polling;  // without the hint, the host would poll for ten seconds
    long_polling.poll_window = 10s;
    awaited_host a(long_polling);
    a.hg.run_until([] { return false; }, 20ms);
    a.guest_send();
    ASSERT_TRUE(a.hg.run_until([&] { return a.host_got == 2; }));
    EXPECT_EQ(a.guest->stats().doorbells_rung, 1u) << "the host slept while its peer awaited the answer";
    EXPECT_EQ(a.host->stats().doorbells_answered, 1u);
}

TEST(ShmTransport, ASideThatAnswersPollsForTheNextCallHoweverLongTheAnswerTook) {
    net::shm_options short_polling;
    short_polling.poll_window = 1ms;
    awaited_host a(short_polling);
    for (const bool now : {false, true}) {
        a.hg.run_until([] { return false; }, 20ms);  // far longer than the polling window
        a.answer(now);
        a.guest_send();
        ASSERT_TRUE(a.hg.run_until([&] { return a.host_got == 2 + now; }));
        EXPECT_EQ(a.guest->stats().doorbells_rung, 0u) << "the host was awake again before its answer went";
        EXPECT_EQ(a.host->stats().doorbells_answered, 0u);
        a.host->peer_awaits_answer();
        a.host_receive();
    }
}

TEST(ShmTransport, ByteReadsSmallerThanAMessageTakeItInPieces) {
    host_and_guest hg;
    auto [host, guest] = connect(hg);
    const bytes sent = numbered_body(1, 3000);
    guest->async_write(sent, [](std::error_code, std::size_t) {});
    bytes got;
    std::array<std::uint8_t, 100> piece{};
    std::function<void()> read = [&] {
        host->async_read_some(piece, [&](std::error_code ec, std::size_t n) {
            if (ec) return;
            EXPECT_LE(n, piece.size());
            got.insert(got.end(), piece.begin(), piece.begin() + static_cast<long>(n));
            if (got.size() < sent.size()) read();
        });
    };
    read();
    EXPECT_TRUE(hg.run_until([&] { return got.size() >= sent.size(); }));
    EXPECT_EQ(got, sent);
}

TEST(ShmTransport, AMessageOfAnotherKindOnAByteStreamIsAnErrorAfterTheBytesBeforeIt) {
    host_and_guest hg;
    auto [host, guest] = connect(hg);
    const bytes first = numbered_body(1, 500);
    guest->async_write(first, [](std::error_code, std::size_t) {});
    guest->async_send_message(KDCOM_SHM_KD_PDU, first, [](std::error_code, std::size_t) {});
    hg.run_until([] { return false; }, 50ms);
    bytes buffer(64 * 1024);
    std::size_t got = 0;
    std::error_code ec;
    bool done = false;
    host->async_read_some(buffer, [&](std::error_code e, std::size_t n) {
        got = n;
        ec = e;
        done = true;
    });
    hg.run_until([&] { return done; });
    EXPECT_FALSE(ec) << "the good bytes first";
    EXPECT_EQ(got, first.size());
    done = false;
    host->async_read_some(buffer, [&](std::error_code e, std::size_t) {
        ec = e;
        done = true;
    });
    hg.run_until([&] { return done; });
    EXPECT_EQ(ec, kdcom::errc::shm_unexpected_message);
}

TEST(ShmTransport, OneGuestAtATimeOthersAreRefusedUntilItLeaves) {
    host_and_guest hg;
    auto [host, guest] = connect(hg);
    ASSERT_TRUE(host && guest);
    auto intruder = net::make_shm_guest(hg.io.get_executor(), hg.name);
    std::error_code ec;
    EXPECT_FALSE(hg.open(*intruder, &ec));
    EXPECT_EQ(ec, std::errc::connection_refused);
    EXPECT_EQ(hg.host->refused(), 1u);

    host->close();  // the session would, on a disconnect
    guest.reset();
    auto [host2, guest2] = connect(hg);
    EXPECT_TRUE(host2 && guest2) << "the next guest is accepted";
}

TEST(ShmTransport, AProcessThatConnectsAndSaysNothingLosesTheGuestSlotAfterTheHelloTimeout) {
    net::shm_options options;
    options.hello_timeout = 300ms;
    host_and_guest hg(options);
    // Connects to the rendezvous and never answers the hello.
    asio::local::stream_protocol::socket squatter(hg.io);
    squatter.connect(net::shm_rendezvous_path(hg.name));
    std::unique_ptr<net::byte_stream> held;
    hg.host->async_open([&](std::error_code, std::unique_ptr<net::byte_stream> s) { held = std::move(s); });
    ASSERT_TRUE(hg.run_until([&] { return held != nullptr; }));
    std::error_code read_error;
    bool read_done = false;
    std::uint8_t byte;
    const auto started = std::chrono::steady_clock::now();
    held->async_read_some(std::span(&byte, 1), [&](std::error_code ec, std::size_t) {
        read_error = ec;
        read_done = true;
    });
    ASSERT_TRUE(hg.run_until([&] { return read_done; }, 5s)) << "the host does not wait for ever";
    EXPECT_EQ(read_error, errc::shm_no_ready);
    EXPECT_GE(std::chrono::steady_clock::now() - started, 250ms);
    held->close();  // as the session does when its stream fails
    // The slot is free: a real guest (which answers the hello) gets it and keeps it.
    auto [host, guest] = connect(hg);
    ASSERT_TRUE(host && guest) << "the real guest is accepted";
    hg.run_until([] { return false; }, 500ms);  // past the hello timeout
    bool sent = false, received = false;
    std::error_code received_error;
    bytes buffer(16);
    guest->async_send_message(KDCOM_SHM_KDCOM_BYTES, bytes{1, 2, 3}, [&](std::error_code, std::size_t) { sent = true; });
    host->async_read_some(buffer, [&](std::error_code ec, std::size_t) {
        received_error = ec;
        received = true;
    });
    ASSERT_TRUE(hg.run_until([&] { return sent && received; }));
    EXPECT_FALSE(received_error) << "the ready byte came: the guest keeps the slot. " << received_error.message();
}

TEST(ShmTransport, AStalledGuestFailsTheHostsWriteWithoutBlockingTheLoop) {
    net::shm_options options;
    options.region.ring_size = 4096;
    options.region.max_message = 1024;
    options.stall_timeout = 300ms;
    host_and_guest hg(options);
    auto [host, guest] = connect(hg);
    const bytes lots(64 * 1024, 0x5A);  // far more than the ring holds; the guest never reads
    std::error_code ec;
    std::size_t written = 0;
    bool done = false;
    const auto start = std::chrono::steady_clock::now();
    host->async_write(lots, [&](std::error_code e, std::size_t n) {
        ec = e;
        written = n;
        done = true;
    });
    int ticks = 0;
    asio::steady_timer ticker(hg.io);
    std::function<void()> tick = [&] {
        ticker.expires_after(20ms);
        ticker.async_wait([&](std::error_code e) {
            if (e) return;
            ++ticks;
            if (!done) tick();
        });
    };
    tick();
    hg.run_until([&] { return done; });
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(ec, kdcom::errc::peer_stalled);
    EXPECT_GT(written, 0u);
    EXPECT_LT(written, lots.size());
    EXPECT_GE(elapsed, 300ms);
    EXPECT_LT(elapsed, 3s);
    EXPECT_GE(ticks, 5) << "the io_context kept running while the write waited";
}

TEST(ShmTransport, AGuestProcessKilledWhileTheHostWaitsEndsTheHostsReceiveWithEndOfFile) {
    host_and_guest hg;
    std::unique_ptr<net::byte_stream> host_side;
    hg.host->async_open([&](std::error_code, std::unique_ptr<net::byte_stream> s) { host_side = std::move(s); });
    const pid_t child = ::fork();
    if (child == 0) {
        raw_shm_guest raw(hg.name);
        raw.attach();
        ::pause();  // until killed
        ::_exit(0);
    }
    ASSERT_GT(child, 0);
    ASSERT_TRUE(hg.run_until([&] { return host_side != nullptr; }));
    std::error_code ec;
    bool done = false;
    bytes buffer(64 * 1024);
    host_side->async_read_some(buffer, [&](std::error_code e, std::size_t) {
        ec = e;
        done = true;
    });
    hg.run_until([] { return false; }, 50ms);
    EXPECT_FALSE(done) << "nothing to read yet";
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    EXPECT_TRUE(hg.run_until([&] { return done; }));
    EXPECT_EQ(ec, asio::error::eof);
}

// A guest that writes random words all over the region and rings the host's doorbell, from another
// thread or another process, while the host runs a session with traffic pending. The host may
// report the ring corrupt and drop that guest, but never crashes, reads or writes out of bounds
// (ASan), races (TSan), or hangs; and the next, well-behaved guest gets a working session.
void scribble(raw_shm_guest& raw, std::chrono::milliseconds how_long, unsigned seed) {
    std::mt19937_64 rng(seed);
    const auto words = raw.size / 8;
    auto* base = reinterpret_cast<std::uint64_t*>(raw.base);
    const auto end = std::chrono::steady_clock::now() + how_long;
    for (std::uint64_t i = 0; std::chrono::steady_clock::now() < end; ++i) {
        const std::uint64_t r = rng();
        // Mostly small values in plausible places (counters, lengths), sometimes anything.
        const std::uint64_t value = r % 4 == 0 ? r : (r >> 8) % 5000;
        std::atomic_ref<std::uint64_t>(base[(r >> 16) % words]).store(value, std::memory_order_relaxed);
        if (i % 64 == 0) raw.ring_host();
    }
}

void expect_host_survives_scribbling(bool from_another_process) {
    asio::io_context io;
    const std::string name = unique_shm_name();
    std::error_code ec;
    auto host_link = net::make_shm_host(io.get_executor(), name, {}, ec);
    ASSERT_TRUE(host_link) << ec.message();
    net::session_options options;
    options.reconnect_delay_min = 10ms;
    endpoint_config target_config{.role = role::target};
    target_config.implicit_ack = false;
    auto target = net::session::create(std::move(host_link), target_config, options);
    std::vector<std::string> closings;  // why the host dropped each stream
    target->set_notice_handler([&](const net::session_notice& n) {
        if (n.kind == net::session_notice::what::stream_closed) closings.push_back(n.text);
    });
    target->start();
    // Traffic the host is busy with while the guest scribbles.
    for (std::uint32_t i = 0; i < 50; ++i)
        target->async_send(wire::packet_type::state_manipulate, numbered_body(i, 4000), {}, [](std::error_code) {});

    auto run_for = [&](std::chrono::milliseconds d) {
        const auto end = std::chrono::steady_clock::now() + d;
        while (std::chrono::steady_clock::now() < end) io.run_one_for(5ms);
    };
    if (from_another_process) {
        const pid_t child = ::fork();
        if (child == 0) {
            raw_shm_guest raw(name);
            raw.attach();
            scribble(raw, 700ms, 11);
            ::_exit(0);
        }
        ASSERT_GT(child, 0);
        int status = 0;
        while (::waitpid(child, &status, WNOHANG) == 0) run_for(10ms);
        EXPECT_TRUE(WIFEXITED(status));
    } else {
        std::atomic<bool> scribbled{false};
        std::thread guest([&] {
            raw_shm_guest raw(name);
            raw.attach();
            scribble(raw, 700ms, 12);
            scribbled = true;
        });
        while (!scribbled) run_for(10ms);
        guest.join();
    }
    run_for(50ms);
    ASSERT_FALSE(closings.empty()) << "the host noticed that guest go";
    const bool saw_corruption =
        std::find(closings.begin(), closings.end(), make_error_code(kdcom::errc::shm_corrupt_ring).message()) != closings.end();
    EXPECT_TRUE(saw_corruption) << "the scribbling was detected (first reason: " << closings.front() << ")";

    // A good guest now: its debugger session gets every packet the host still has to send.
    auto guest_link = net::make_shm_guest(io.get_executor(), name);
    endpoint_config debugger_config{.role = role::debugger};
    debugger_config.implicit_ack = false;
    auto debugger = net::session::create(std::move(guest_link), debugger_config, options);
    debugger->start();
    bool replied = false;
    debugger->async_receive([&](std::error_code e, net::received_packet) { replied = !e; });
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!replied && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
    EXPECT_TRUE(replied) << "the host serves the next guest";
    debugger->close();
    target->close();
    io.run_for(20ms);
}

TEST(ShmTransport, AGuestThreadScribblingOverTheRegionCannotHarmTheHost) { expect_host_survives_scribbling(false); }

TEST(ShmTransport, AGuestProcessScribblingOverTheRegionCannotHarmTheHost) { expect_host_survives_scribbling(true); }

}  // namespace
