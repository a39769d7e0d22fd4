// The VMM bridge on a bulk dump: a debugger reads guest physical memory in 3944-byte reads (the
// most one KD packet carries) through the full path (debugger session, Unix socket, bridge, shared
// memory, the fake kernel on its own thread), with and without the fast path that answers reads
// from guest memory on the host. Each iteration reads 4 MiB.
//   build/bench/bridge_bench
#include <atomic>
#include <functional>
#include <future>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <benchmark/benchmark.h>

#include "kdcom/bridge/bridge.hpp"
#include "kdcom/guest/fake_kernel.hpp"
#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/state_change.hpp"
#include "kdcom/net/shm_link.hpp"
#include "kdcom/net/socket_link.hpp"
#include "ratio_reporter.hpp"

namespace {
using namespace kdcom;
using bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

constexpr std::uint64_t image_size = 256ull << 20;
constexpr std::uint32_t read_size = wire::default_max_body - kd::manipulate_header_size;  // 3944
constexpr std::uint64_t dump_size = 4ull << 20;

// Bridge and debugger on an io_context thread; the fake kernel, stopped for the debugger, on its own.
struct dump_rig {
    asio::io_context io;
    std::string name = "bench-bridge-" + std::to_string(::getpid());
    std::string socket = "/tmp/kdcom-bench-bridge-" + std::to_string(::getpid()) + ".sock";
    guest::memory_image memory{image_size};
    std::shared_ptr<bridge::bridge> bridge;
    std::shared_ptr<net::session> debugger;
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    std::thread io_thread, guest_thread;
    kdcom_guest* guest = nullptr;
    std::atomic<bool> stop{false};
    std::unique_ptr<guest::fake_kernel> kernel;

    explicit dump_rig(bool fast_path) {
        std::error_code ec;
        bridge::options o;
        if (fast_path) o.read_physical = [this](std::uint64_t a, std::span<std::uint8_t> out) { return memory.read(a, out); };
        bridge = bridge::bridge::create(net::make_shm_host(io.get_executor(), name, {}, ec),
                                        net::make_unix_listener(io.get_executor(), socket, ec), std::move(o));
        bridge->start();
        debugger = net::session::create(net::make_unix_client(io.get_executor(), socket), {.role = role::debugger});
        debugger->start();
        io_thread = std::thread([this] { io.run(); });
        guest = kdcom_guest_attach(name.c_str(), nullptr, 0);
        kernel = std::make_unique<guest::fake_kernel>(guest, memory);
        guest_thread = std::thread([this] { kernel->run(stop); });
        // Break in and wait for the state change: from here the kernel serves requests.
        std::promise<void> stopped;
        asio::post(io, [&] {
            debugger->send_breakin();
            debugger->async_receive([&](std::error_code, net::received_packet) { stopped.set_value(); });
        });
        stopped.get_future().get();
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
        std::promise<std::uint64_t> done;
        std::uint64_t got = 0;
        std::function<void(std::uint64_t)> next = [&](std::uint64_t at) {
            if (at >= address + size) return done.set_value(got);
            kd::manipulate_header h;
            h.api = kd::manipulate_api::read_physical_memory;
            h.memory = {at, static_cast<std::uint32_t>(std::min<std::uint64_t>(read_size, address + size - at)), 0};
            std::uint8_t header[kd::manipulate_header_size];
            kd::encode_manipulate(h, header);
            debugger->async_send(wire::packet_type::state_manipulate, header, {}, [](std::error_code) {});
            debugger->async_receive([&, at](std::error_code ec, net::received_packet p) {
                if (ec) return done.set_value(got);
                got += p.body.size() - kd::manipulate_header_size;
                next(at + read_size);
            });
        };
        asio::post(io, [&] { next(address); });
        return done.get_future().get();
    }
};

void run_dump(benchmark::State& state, bool fast_path) {
    dump_rig rig(fast_path);
    std::uint64_t address = 0, total = 0;
    for (auto _ : state) {
        total += rig.dump(address, dump_size);
        address = (address + dump_size) % image_size;
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(total));
    if (total != state.iterations() * dump_size) state.SkipWithError("a read came back short");
}

void BM_DumpThroughGuest(benchmark::State& state) { run_dump(state, false); }
void BM_DumpFastPath(benchmark::State& state) { run_dump(state, true); }

BENCHMARK(BM_DumpThroughGuest)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DumpFastPath)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    kdcom::bench::ratio_reporter reporter(
        std::vector<std::pair<std::string, std::string>>{{"BM_DumpFastPath/real_time", "BM_DumpThroughGuest/real_time"}});
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
