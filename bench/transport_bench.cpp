// The Asio binding over real sockets and guest shared memory: the round trip of one 4000-byte data
// packet and its ACK through two full sessions, against a raw ping-pong of the same bytes on the
// same kind of socket (or ring, with its doorbells) in the same run; bulk throughput; and many
// sessions on one thread.
//   build/bench/transport_bench
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/connect_pair.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <benchmark/benchmark.h>

#include "kdcom/net/session.hpp"
#include "kdcom/net/shm_link.hpp"
#include "kdcom/net/socket_link.hpp"
#include "kdcom/wire/constants.hpp"
#include "ratio_reporter.hpp"

namespace {
using namespace kdcom;
using bytes = std::vector<std::uint8_t>;

enum transport { tcp = 0, unix_socket = 1, shm = 2 };

struct pair {
    asio::io_context io;
    std::shared_ptr<net::session> debugger, target;

    explicit pair(transport t, const std::string& socket_path) {
        std::error_code ec;
        std::unique_ptr<net::link> server, client;
        if (t == tcp) {
            auto l = net::make_tcp_listener(io.get_executor(), "127.0.0.1", 0, ec);
            client = net::make_tcp_client(io.get_executor(), "127.0.0.1", l->local_port());
            server = std::move(l);
        } else if (t == unix_socket) {
            ::unlink(socket_path.c_str());
            server = net::make_unix_listener(io.get_executor(), socket_path, ec);
            client = net::make_unix_client(io.get_executor(), socket_path);
        } else {  // the target is the host, as in the VMM bridge
            const std::string name = "bench-" + std::to_string(::getpid());
            server = net::make_shm_host(io.get_executor(), name, {}, ec);
            client = net::make_shm_guest(io.get_executor(), name);
        }
        endpoint_config d{.role = role::debugger}, tc{.role = role::target};
        target = net::session::create(std::move(server), tc);
        debugger = net::session::create(std::move(client), d);
        target->start();
        debugger->start();
        receive_forever();
        // Let the handshake finish.
        bool ready = false;
        const bytes hello(8, 1);
        debugger->async_send(wire::packet_type::state_manipulate, hello, {}, [&](std::error_code) { ready = true; });
        while (!ready) io.run_one();
    }
    ~pair() {
        debugger->close();
        target->close();
        io.run_for(std::chrono::milliseconds(10));
    }

    void receive_forever() {
        target->async_receive([this](std::error_code ec, net::received_packet) {
            if (!ec) receive_forever();
        });
    }
};

// Bytes per second, and microseconds per round trip (one iteration is one round trip).
void report_round_trips(benchmark::State& state, std::size_t bytes_per_trip) {
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes_per_trip));
    state.counters["us/round trip"] = benchmark::Counter(static_cast<double>(state.iterations()) * 1e-6,
                                                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

const std::string socket_path = "/tmp/kdcom-bench-" + std::to_string(::getpid()) + ".sock";

void BM_SessionRoundTrip(benchmark::State& state) {
    pair p(static_cast<transport>(state.range(0)), socket_path);
    const bytes body(4000, 0x5A);
    for (auto _ : state) {
        bool done = false;
        p.debugger->async_send(wire::packet_type::state_manipulate, body, {}, [&](std::error_code) { done = true; });
        while (!done) p.io.run_one();
    }
    report_round_trips(state, wire::data_packet_size(4000));
}

// The same round trips, each send started from the previous one's completion handler, on the
// io_context's thread, as an event-driven application (the bridge, a simulator) sends; the loop
// above starts each from outside, which costs the send a post through the event loop.
void BM_SessionRoundTripFromHandler(benchmark::State& state) {
    pair p(static_cast<transport>(state.range(0)), socket_path);
    const bytes body(4000, 0x5A);
    constexpr benchmark::IterationCount batch = 1000;
    benchmark::IterationCount left = 0;
    std::function<void()> send_next = [&] {
        p.debugger->async_send(wire::packet_type::state_manipulate, body, {}, [&](std::error_code) {
            if (--left > 0) send_next();
        });
    };
    while (state.KeepRunningBatch(batch)) {
        left = batch;
        asio::post(p.io, send_next);
        while (left > 0) p.io.run_one();
    }
    report_round_trips(state, wire::data_packet_size(4000));
}

// Calls `exchange(a, b)` with two connected sockets of the given kind.
template <class Exchange>
void with_socket_pair(asio::io_context& io, transport t, Exchange&& exchange) {
    if (t == tcp) {
        asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
        asio::ip::tcp::socket a(io), b(io);
        a.connect(acceptor.local_endpoint());
        acceptor.accept(b);
        a.set_option(asio::ip::tcp::no_delay(true));
        b.set_option(asio::ip::tcp::no_delay(true));
        exchange(a, b);
    } else {
        asio::local::stream_protocol::socket a(io), b(io);
        asio::local::connect_pair(a, b);
        exchange(a, b);
    }
}

// The same exchange with no protocol: 4017 bytes one way, 16 back, blocking calls on a socket pair
// of the same kind.
void BM_RawPingPong(benchmark::State& state) {
    asio::io_context io;
    const bytes frame(wire::data_packet_size(4000), 0x5A), ack(16, 0x69);
    bytes in(frame.size()), ack_in(16);
    with_socket_pair(io, static_cast<transport>(state.range(0)), [&](auto& a, auto& b) {
        for (auto _ : state) {
            asio::write(a, asio::buffer(frame));
            asio::read(b, asio::buffer(in));
            asio::write(b, asio::buffer(ack));
            asio::read(a, asio::buffer(ack_in));
        }
    });
    report_round_trips(state, frame.size());
}

// The same raw exchange through Asio's asynchronous operations on one io_context: the event-loop
// cost a session cannot avoid, without any protocol.
void BM_RawAsyncPingPong(benchmark::State& state) {
    asio::io_context io;
    auto work = asio::make_work_guard(io);  // between exchanges nothing is pending
    const bytes frame(wire::data_packet_size(4000), 0x5A), ack(16, 0x69);
    bytes in(frame.size()), ack_in(16);
    with_socket_pair(io, static_cast<transport>(state.range(0)), [&](auto& a, auto& b) {
        for (auto _ : state) {
            int steps = 0;
            asio::async_write(a, asio::buffer(frame), [&](std::error_code, std::size_t) { ++steps; });
            asio::async_read(b, asio::buffer(in), [&](std::error_code, std::size_t) {
                asio::async_write(b, asio::buffer(ack), [&](std::error_code, std::size_t) { ++steps; });
                asio::async_read(a, asio::buffer(ack_in), [&](std::error_code, std::size_t) { ++steps; });
            });
            while (steps < 3) io.run_one();
        }
    });
    report_round_trips(state, frame.size());
}

// As above, but with each read already waiting when the bytes arrive, as in any server (and in a
// session): every message then costs an event-loop wake-up. The structural floor for an
// event-driven session on one thread.
void BM_RawAsyncPendingPingPong(benchmark::State& state) {
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    const bytes frame(wire::data_packet_size(4000), 0x5A), ack(16, 0x69);
    bytes in(frame.size()), ack_in(16);
    with_socket_pair(io, static_cast<transport>(state.range(0)), [&](auto& a, auto& b) {
        for (auto _ : state) {
            int steps = 0;
            asio::async_read(a, asio::buffer(ack_in), [&](std::error_code, std::size_t) { ++steps; });
            asio::async_read(b, asio::buffer(in), [&](std::error_code, std::size_t) {
                asio::async_write(b, asio::buffer(ack), [&](std::error_code, std::size_t) { ++steps; });
            });
            io.poll();  // both reads are now waiting in the reactor
            asio::async_write(a, asio::buffer(frame), [&](std::error_code, std::size_t) { ++steps; });
            while (steps < 3) io.run_one();
        }
    });
    report_round_trips(state, frame.size());
}

// A region in private memory seen from both sides, and a blocking eventfd doorbell for each: the
// raw material of the shared-memory transport, for the raw baselines.
struct raw_ring_pair {
    shm::region_parameters p;
    std::unique_ptr<std::uint64_t[]> memory{new std::uint64_t[(p.region_size() + 7) / 8]()};
    std::span<std::uint8_t> bytes_of_region{reinterpret_cast<std::uint8_t*>(memory.get()), p.region_size()};
    std::error_code initialised = shm::region::initialise(bytes_of_region, p);
    shm::region host{bytes_of_region, p, shm::side::host}, guest{bytes_of_region, p, shm::side::guest};
    int host_bell = ::eventfd(0, EFD_CLOEXEC), guest_bell = ::eventfd(0, EFD_CLOEXEC);
    ~raw_ring_pair() {
        ::close(host_bell);
        ::close(guest_bell);
    }
};

// The raw exchange over a shared-memory ring pair: the frame into one ring and a doorbell signal,
// the doorbell taken and the frame copied out, and the same back for the ACK. Blocking, one
// thread, no framing: what the shared-memory transport does at the least.
void BM_RawRingPingPong(benchmark::State& state) {
    raw_ring_pair rings;
    auto &host = rings.host, &guest = rings.guest;
    const auto& p = rings.p;
    const int host_bell = rings.host_bell, guest_bell = rings.guest_bell;
    const bytes frame(wire::data_packet_size(4000), 0x5A), ack(16, 0x69);
    bytes in(p.max_message);
    std::uint16_t kind;
    std::size_t length;
    std::uint64_t signal = 1;
    for (auto _ : state) {
        host.outbound().write(KDCOM_SHM_KDCOM_BYTES, frame);
        [[maybe_unused]] auto n = ::write(guest_bell, &signal, 8);
        n = ::read(guest_bell, &signal, 8);
        guest.inbound().read(in, kind, length);
        guest.outbound().write(KDCOM_SHM_KDCOM_BYTES, ack);
        n = ::write(host_bell, &signal, 8);
        n = ::read(host_bell, &signal, 8);
        host.inbound().read(in, kind, length);
        benchmark::DoNotOptimize(in.data());
    }
    report_round_trips(state, frame.size());
}

// The shared-memory round trip with host and guest each on its own thread, as in a VMM (the guest
// is another vCPU, or another process): every message then wakes a sleeping thread. The guest
// (debugger role) sends; the host (target role) acknowledges from its own io_context.
void BM_SessionRoundTripSeparateThreads(benchmark::State& state) {
    asio::io_context host_io, guest_io;
    const std::string name = "bench-threads-" + std::to_string(::getpid());
    std::error_code ec;
    auto target = net::session::create(net::make_shm_host(host_io.get_executor(), name, {}, ec), {.role = role::target});
    auto debugger = net::session::create(net::make_shm_guest(guest_io.get_executor(), name), {.role = role::debugger});
    std::function<void()> receive = [&] {
        target->async_receive([&](std::error_code e, net::received_packet) {
            if (!e) receive();
        });
    };
    target->start();
    receive();
    auto work = asio::make_work_guard(host_io);
    std::thread host([&] { host_io.run(); });  // from here on, the target is the host thread's
    debugger->start();
    const auto send_and_wait = [&](const bytes& body) {
        bool done = false;
        debugger->async_send(wire::packet_type::state_manipulate, body, {}, [&](std::error_code) { done = true; });
        while (!done) guest_io.run_one();
    };
    send_and_wait(bytes(8, 1));  // the handshake
    const bytes body(4000, 0x5A);
    for (auto _ : state) send_and_wait(body);
    debugger->close();
    guest_io.run_for(std::chrono::milliseconds(10));
    asio::post(host_io, [&] { target->close(); });
    work.reset();
    host.join();
    report_round_trips(state, wire::data_packet_size(4000));
}

// The raw ring exchange with the same two threads, each sleeping on its doorbell between messages.
void BM_RawRingPingPongSeparateThreads(benchmark::State& state) {
    raw_ring_pair rings;
    auto &host = rings.host, &guest = rings.guest;
    const auto& p = rings.p;
    const int host_bell = rings.host_bell, guest_bell = rings.guest_bell;
    const bytes frame(wire::data_packet_size(4000), 0x5A), ack(16, 0x69);
    std::atomic<bool> stop{false};
    std::thread host_thread([&] {
        bytes in(p.max_message);
        std::uint16_t kind;
        std::size_t length;
        std::uint64_t signal = 1;
        for (;;) {
            [[maybe_unused]] auto n = ::read(host_bell, &signal, 8);
            if (stop) return;
            while (host.inbound().read(in, kind, length) == shm::ring_status::ok) {
                host.outbound().write(KDCOM_SHM_KDCOM_BYTES, ack);
                signal = 1;
                n = ::write(guest_bell, &signal, 8);
            }
        }
    });
    bytes in(p.max_message);
    std::uint16_t kind;
    std::size_t length;
    std::uint64_t signal = 1;
    for (auto _ : state) {
        guest.outbound().write(KDCOM_SHM_KDCOM_BYTES, frame);
        signal = 1;
        [[maybe_unused]] auto n = ::write(host_bell, &signal, 8);
        do n = ::read(guest_bell, &signal, 8);
        while (guest.inbound().read(in, kind, length) != shm::ring_status::ok);
    }
    stop = true;
    signal = 1;
    [[maybe_unused]] auto n = ::write(host_bell, &signal, 8);
    host_thread.join();
    report_round_trips(state, frame.size());
}

// Throughput: 4000-byte packets one way, as fast as stop-and-wait allows.
void BM_SessionBulk(benchmark::State& state) {
    pair p(static_cast<transport>(state.range(0)), socket_path);
    const bytes body(4000, 0x33);
    constexpr int batch = 64;
    for (auto _ : state) {
        int done = 0;
        for (int i = 0; i < batch; ++i)
            p.debugger->async_send(wire::packet_type::state_manipulate, body, {}, [&](std::error_code) { ++done; });
        while (done < batch) p.io.run_one();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch * 4000));
    state.counters["packets/s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}

long resident_kib() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

// Many session pairs on one io_context and one thread, all exchanging at once.
void BM_ManySessions(benchmark::State& state) {
    const int pairs = static_cast<int>(state.range(0));
    asio::io_context io;
    std::vector<std::shared_ptr<net::session>> debuggers, targets;
    const long before = resident_kib();
    for (int i = 0; i < pairs; ++i) {
        std::error_code ec;
        auto l = net::make_tcp_listener(io.get_executor(), "127.0.0.1", 0, ec);
        if (ec) {
            state.SkipWithError(("listener: " + ec.message()).c_str());
            return;
        }
        auto c = net::make_tcp_client(io.get_executor(), "127.0.0.1", l->local_port());
        targets.push_back(net::session::create(std::move(l), {.role = role::target}));
        debuggers.push_back(net::session::create(std::move(c), {.role = role::debugger}));
        targets.back()->start();
        debuggers.back()->start();
    }
    std::function<void(std::size_t)> receive = [&](std::size_t i) {
        targets[i]->async_receive([&, i](std::error_code ec, net::received_packet) {
            if (!ec) receive(i);
        });
    };
    for (std::size_t i = 0; i < targets.size(); ++i) receive(i);
    const bytes body(256, 0x11);
    std::size_t completed = 0;
    for (auto _ : state) {
        completed = 0;
        for (auto& d : debuggers)
            d->async_send(wire::packet_type::state_manipulate, body, {}, [&](std::error_code) { ++completed; });
        while (completed < debuggers.size()) io.run_one();
    }
    state.counters["packets/s"] = benchmark::Counter(static_cast<double>(state.iterations() * debuggers.size()),
                                                     benchmark::Counter::kIsRate);
    state.counters["KiB/session"] = static_cast<double>(resident_kib() - before) / (2.0 * pairs);
    for (auto& s : debuggers) s->close();
    for (auto& s : targets) s->close();
    io.run_for(std::chrono::milliseconds(50));
}

BENCHMARK(BM_SessionRoundTrip)->Arg(tcp)->Arg(unix_socket)->Arg(shm);
BENCHMARK(BM_SessionRoundTripFromHandler)->Arg(tcp)->Arg(unix_socket)->Arg(shm);
BENCHMARK(BM_RawPingPong)->Arg(tcp)->Arg(unix_socket);
BENCHMARK(BM_RawRingPingPong);
BENCHMARK(BM_SessionRoundTripSeparateThreads)->UseRealTime();
BENCHMARK(BM_RawRingPingPongSeparateThreads)->UseRealTime();
BENCHMARK(BM_RawAsyncPingPong)->Arg(tcp)->Arg(unix_socket);
BENCHMARK(BM_RawAsyncPendingPingPong)->Arg(tcp)->Arg(unix_socket);
BENCHMARK(BM_SessionBulk)->Arg(tcp)->Arg(unix_socket)->Arg(shm);
BENCHMARK(BM_ManySessions)->Arg(1000)->Iterations(20);

}  // namespace

int main(int argc, char** argv) {
    // 1000 session pairs need about 4000 descriptors.
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    kdcom::bench::ratio_reporter reporter({
        {"BM_SessionRoundTrip/0", "BM_RawPingPong/0"},
        {"BM_SessionRoundTrip/1", "BM_RawPingPong/1"},
        {"BM_SessionRoundTrip/0", "BM_RawAsyncPingPong/0"},
        {"BM_SessionRoundTrip/1", "BM_RawAsyncPingPong/1"},
        {"BM_SessionRoundTrip/0", "BM_RawAsyncPendingPingPong/0"},
        {"BM_SessionRoundTrip/1", "BM_RawAsyncPendingPingPong/1"},
        {"BM_SessionRoundTrip/2", "BM_RawRingPingPong"},
        {"BM_SessionRoundTripFromHandler/0", "BM_RawPingPong/0"},
        {"BM_SessionRoundTripFromHandler/1", "BM_RawPingPong/1"},
        {"BM_SessionRoundTripFromHandler/0", "BM_RawAsyncPendingPingPong/0"},
        {"BM_SessionRoundTripFromHandler/1", "BM_RawAsyncPendingPingPong/1"},
        {"BM_SessionRoundTripFromHandler/2", "BM_RawRingPingPong"},
        {"BM_SessionRoundTripSeparateThreads/real_time", "BM_RawRingPingPongSeparateThreads/real_time"},
    });
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    ::unlink(socket_path.c_str());
    return 0;
}
