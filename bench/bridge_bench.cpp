// The bulk-dump benchmark: a debugger reads 1 GiB of guest physical memory in 3944-byte reads (the
// most one KD packet carries) through the full path (debugger session, a Unix or TCP socket or
// shared memory, bridge, shared memory, the fake kernel on its own thread), with and without the
// fast path that answers reads from guest memory on the host. The baselines do the same exchange
// over the same kind of link with no framing and no acknowledgements: a 56-byte request, a 4000-byte answer
// copied from the same memory image, both ends on one io_context thread as the debugger and the
// bridge are.
//   build/bench/bridge_bench                       (1 GiB per dump)
//   KDCOM_BENCH_DUMP_MIB=64 build/bench/bridge_bench   (quicker)
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <future>
#include <thread>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/connect_pair.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <benchmark/benchmark.h>

#include "kdcom/bridge/bridge.hpp"
#include "kdcom/guest/fake_kernel.hpp"
#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/state_change.hpp"
#include "kdcom/net/link_pair.hpp"
#include "kdcom/net/shm_link.hpp"
#include "allocation_counter.hpp"
#include "ratio_reporter.hpp"
#include "session_dump_loop.hpp"

namespace {
using namespace kdcom;
using bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

constexpr std::uint32_t read_size = wire::default_max_body - kd::manipulate_header_size;  // 3944

// 1 GiB unless KDCOM_BENCH_DUMP_MIB says otherwise.
std::uint64_t dump_size() {
    const char* mib = std::getenv("KDCOM_BENCH_DUMP_MIB");
    return (mib ? std::strtoull(mib, nullptr, 10) : 1024) << 20;
}
const std::uint64_t image_size = dump_size();

// Bridge and debugger on an io_context thread; the fake kernel, stopped for the debugger, on its own.
struct dump_rig {
    asio::io_context io;
    std::string name = "bench-bridge-" + std::to_string(::getpid());
    guest::memory_image memory{image_size};
    std::unique_ptr<net::link_pair> links;
    std::shared_ptr<bridge::bridge> bridge;
    std::shared_ptr<net::session> debugger;
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    std::thread io_thread, guest_thread;
    kdcom_guest* guest = nullptr;
    std::atomic<bool> stop{false};
    std::unique_ptr<guest::fake_kernel> kernel;

    dump_rig(net::pair_kind kind, bool fast_path) {
        std::error_code ec;
        bridge::options o;
        if (fast_path) o.read_physical = [this](std::uint64_t a, std::span<std::uint8_t> out) { return memory.read(a, out); };
        links = net::link_pair::make(io.get_executor(), kind, ec);
        bridge = bridge::bridge::create(net::make_shm_host(io.get_executor(), name, {}, ec), std::move(links->target),
                                        std::move(o));
        bridge->start();
        debugger = net::session::create(std::move(links->debugger), {.role = role::debugger});
        debugger->start();
        io_thread = std::thread([this] { io.run(); });
        guest = kdcom_guest_attach(name.c_str(), nullptr, 0);
        kernel = std::make_unique<guest::fake_kernel>(guest, memory);
        guest_thread = std::thread([this] { kernel->run(stop); });
        // Break in and wait for the state change: from here the kernel serves requests. A break-in
        // sent before the link is up is lost, as on a wire: send it again until the kernel stops.
        std::promise<void> stopped;
        asio::post(io, [&] { debugger->async_receive([&](std::error_code, net::received_packet) { stopped.set_value(); }); });
        auto kernel_stopped = stopped.get_future();
        do asio::post(io, [this] { debugger->send_breakin(); });
        while (kernel_stopped.wait_for(200ms) != std::future_status::ready);
    }
    ~dump_rig() {
        std::promise<void> resumed;
        asio::post(io, [&] {
            kd::manipulate_header h;
            h.api = kd::manipulate_api::continue_;
            std::uint8_t header[kd::manipulate_header_size];
            kd::encode_manipulate(h, header);
            debugger->async_send(wire::packet_type::state_manipulate, header, {}, [&](std::error_code) { resumed.set_value(); });
        });
        resumed.get_future().get();
        stop = true;
        guest_thread.join();
        kdcom_guest_detach(guest);
        asio::post(io, [this] {
            debugger->close();
            bridge->close();
        });
        work.reset();
        io_thread.join();
    }

    // Reads `size` bytes from `address` in maximal reads, one after another, like a dump.
    std::uint64_t dump(std::uint64_t address, std::uint64_t size) {
        return bench::dump_with_session_loop(io, *debugger, address, size);
    }
};

void run_dump(benchmark::State& state, net::pair_kind kind, bool fast_path) {
    dump_rig rig(kind, fast_path);
    const std::uint64_t size = dump_size();
    std::uint64_t total = 0;
    const std::size_t allocations_before = bench::allocations.load();
    for (auto _ : state) total += rig.dump(0, size);
    const std::size_t allocations = bench::allocations.load() - allocations_before;
    state.SetBytesProcessed(static_cast<std::int64_t>(total));
    if (total != state.iterations() * size) state.SkipWithError("a read came back short");
    // Guest crossings per read: 2 with a RECEIVE and a SEND, 1 when the request rides on SENT.
    const double reads = static_cast<double>(total) / read_size;
    state.counters["guest_calls_per_read"] = static_cast<double>(rig.bridge->stats().guest_calls) / reads;
    // In the whole process: the debugger's session, the bridge and its session, the guest library.
    state.counters["allocations_per_read"] = static_cast<double>(allocations) / reads;
}

// Reading and writing whole buffers, on an Asio socket or on a kdcom byte stream (shared memory).
template <class Socket, class Handler>
void read_exactly(Socket& s, std::span<std::uint8_t> into, Handler h) {
    asio::async_read(s, asio::buffer(into.data(), into.size()), std::move(h));
}
template <class Socket, class Handler>
void write_all(Socket& s, std::span<const std::uint8_t> data, Handler h) {
    asio::async_write(s, asio::buffer(data.data(), data.size()), std::move(h));
}
using stream_ptr = std::unique_ptr<net::byte_stream>;
template <class Handler>
void read_exactly(stream_ptr& s, std::span<std::uint8_t> into, Handler h, std::size_t done = 0) {
    s->async_read_some(into.subspan(done), [&s, into, h, done](std::error_code ec, std::size_t n) mutable {
        if (ec || done + n == into.size()) return h(ec, done + n);
        read_exactly(s, into, std::move(h), done + n);
    });
}
template <class Handler>
void write_all(stream_ptr& s, std::span<const std::uint8_t> data, Handler h) {
    s->async_write(data, std::move(h));
}

// The same exchange with nothing of KDCOM, on the same kind of socket and event loop as the
// session path (both ends on one io_context thread): the debugger's end writes a 56-byte request
// and reads the answer; the other end reads the request and answers with the 56 bytes and the
// requested bytes of the image.
template <class Socket>
struct raw_exchange {
    Socket client, server;
    guest::memory_image memory{image_size};
    std::uint8_t request[kd::manipulate_header_size]{}, received[kd::manipulate_header_size]{};
    bytes answer = bytes(kd::manipulate_header_size + read_size), reply = bytes(kd::manipulate_header_size + read_size);
    std::uint64_t end = 0, total = 0;

    raw_exchange(Socket c, Socket s) : client(std::move(c)), server(std::move(s)) {}

    void serve() {
        read_exactly(server, std::span(received), [this](std::error_code ec, std::size_t) {
            if (ec) return;
            const auto h = kd::decode_manipulate(received);
            std::copy(std::begin(received), std::end(received), answer.begin());
            const std::size_t n = memory.read(h->memory.address, std::span(answer).subspan(kd::manipulate_header_size,
                                                                                            h->memory.transfer_count));
            write_all(server, std::span(answer).first(kd::manipulate_header_size + n), [this](std::error_code e, std::size_t) {
                if (!e) serve();
            });
        });
    }

    void ask(std::uint64_t at) {
        if (at >= end) return;
        kd::manipulate_header h;
        h.api = kd::manipulate_api::read_physical_memory;
        h.memory = {at, static_cast<std::uint32_t>(std::min<std::uint64_t>(read_size, end - at)), 0};
        kd::encode_manipulate(h, request);
        write_all(client, std::span<const std::uint8_t>(request), [this, at, n = h.memory.transfer_count](std::error_code ec, std::size_t) {
            if (ec) return;
            read_exactly(client, std::span(reply).first(kd::manipulate_header_size + n), [this, at](std::error_code e, std::size_t got) {
                if (e) return;
                total += got - kd::manipulate_header_size;
                ask(at + read_size);
            });
        });
    }
};

template <class Socket>
void run_raw_exchange(benchmark::State& state, asio::io_context& io, Socket client, Socket server) {
    raw_exchange<Socket> x(std::move(client), std::move(server));
    x.end = dump_size();
    x.serve();
    const std::size_t allocations_before = bench::allocations.load();
    for (auto _ : state) {
        const std::uint64_t goal = x.total + x.end;
        x.ask(0);
        while (x.total < goal && io.run_one()) {
        }
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(x.total));
    if (x.total != state.iterations() * x.end) state.SkipWithError("a read came back short");
    state.counters["guest_calls_per_read"] = 0;  // no guest here; every run must report the same counters
    state.counters["allocations_per_read"] =
        static_cast<double>(bench::allocations.load() - allocations_before) / (static_cast<double>(x.total) / read_size);
}

void BM_RawExchangeUnix(benchmark::State& state) {
    asio::io_context io;
    asio::local::stream_protocol::socket a(io), b(io);
    asio::local::connect_pair(a, b);
    run_raw_exchange(state, io, std::move(a), std::move(b));
}

void BM_RawExchangeTcp(benchmark::State& state) {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    asio::ip::tcp::socket client(io), server(io);
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
    client.set_option(asio::ip::tcp::no_delay(true));
    server.set_option(asio::ip::tcp::no_delay(true));
    run_raw_exchange(state, io, std::move(client), std::move(server));
}

// Over the shared-memory transport's byte streams (the same rings, polling and doorbells as the
// debugger's link in BM_DumpShm*).
void BM_RawExchangeShm(benchmark::State& state) {
    asio::io_context io;
    std::error_code ec;
    auto links = net::link_pair::make(io.get_executor(), net::pair_kind::shm, ec);
    stream_ptr client, server;
    links->debugger->async_open([&](std::error_code, stream_ptr s) { client = std::move(s); });
    links->target->async_open([&](std::error_code, stream_ptr s) { server = std::move(s); });
    while (!(client && server) && io.run_one()) {
    }
    if (!client || !server) return state.SkipWithError("no shared-memory streams");
    run_raw_exchange(state, io, std::move(client), std::move(server));
}

void BM_DumpUnixThroughGuest(benchmark::State& state) { run_dump(state, net::pair_kind::unix_socket, false); }
void BM_DumpUnixFastPath(benchmark::State& state) { run_dump(state, net::pair_kind::unix_socket, true); }
void BM_DumpTcpThroughGuest(benchmark::State& state) { run_dump(state, net::pair_kind::tcp, false); }
void BM_DumpTcpFastPath(benchmark::State& state) { run_dump(state, net::pair_kind::tcp, true); }
// The debugger over shared memory too (a debugger in another VM, or a stub in the VMM itself):
// what the protocol and the bridge do when the link costs no system calls.
void BM_DumpShmThroughGuest(benchmark::State& state) { run_dump(state, net::pair_kind::shm, false); }
void BM_DumpShmFastPath(benchmark::State& state) { run_dump(state, net::pair_kind::shm, true); }

// One dump per measurement: a gigabyte is long enough to time on its own.
#define KDCOM_DUMP_BENCHMARK(f) BENCHMARK(f)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1)
KDCOM_DUMP_BENCHMARK(BM_RawExchangeUnix);
KDCOM_DUMP_BENCHMARK(BM_DumpUnixThroughGuest);
KDCOM_DUMP_BENCHMARK(BM_DumpUnixFastPath);
KDCOM_DUMP_BENCHMARK(BM_RawExchangeTcp);
KDCOM_DUMP_BENCHMARK(BM_DumpTcpThroughGuest);
KDCOM_DUMP_BENCHMARK(BM_DumpTcpFastPath);
KDCOM_DUMP_BENCHMARK(BM_RawExchangeShm);
KDCOM_DUMP_BENCHMARK(BM_DumpShmThroughGuest);
KDCOM_DUMP_BENCHMARK(BM_DumpShmFastPath);

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    // Against the raw exchange over the same socket: how much of the link's speed KDCOM and the
    // bridge keep.
    kdcom::bench::ratio_reporter reporter(std::vector<std::pair<std::string, std::string>>{
        {"BM_DumpUnixThroughGuest/iterations:1/real_time", "BM_RawExchangeUnix/iterations:1/real_time"},
        {"BM_DumpUnixFastPath/iterations:1/real_time", "BM_RawExchangeUnix/iterations:1/real_time"},
        {"BM_DumpTcpThroughGuest/iterations:1/real_time", "BM_RawExchangeTcp/iterations:1/real_time"},
        {"BM_DumpTcpFastPath/iterations:1/real_time", "BM_RawExchangeTcp/iterations:1/real_time"},
        {"BM_DumpShmThroughGuest/iterations:1/real_time", "BM_RawExchangeShm/iterations:1/real_time"},
        {"BM_DumpShmFastPath/iterations:1/real_time", "BM_RawExchangeShm/iterations:1/real_time"}});
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
