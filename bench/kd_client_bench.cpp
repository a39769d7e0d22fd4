// What kd::client costs: a dump of 1 GiB of physical memory, in the largest reads a packet carries,
// from `kdcom-sim --serve` (the fake kernel behind the bridge, a process of its own) over a Unix
// socket, once with the client's read_memory (what kdcom-kd's .writemem /p does) and once with a
// bare request/reply loop on the session (what the simulated debugger did before the client, and
// what the bulk-dump benchmark runs). The ratio is the client's cost; the goal is within 10%.
//   build/bench/kd_client_bench
//   KDCOM_BENCH_DUMP_MIB=64 build/bench/kd_client_bench   (quicker)
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <benchmark/benchmark.h>

#include "kdcom/net/kd_client.hpp"
#include "kdcom/net/open_link.hpp"
#include "ratio_reporter.hpp"
#include "session_dump_loop.hpp"

extern char** environ;

namespace {
using namespace kdcom;
using namespace std::chrono_literals;

std::uint64_t dump_size() {
    const char* mib = std::getenv("KDCOM_BENCH_DUMP_MIB");
    return (mib ? std::strtoull(mib, nullptr, 10) : 1024) << 20;
}

// kdcom-sim --serve on a Unix socket for the whole run.
struct served_target {
    std::string socket = (std::filesystem::temp_directory_path() / ("kdcom-kd-bench-" + std::to_string(::getpid()) + ".sock")).string();
    pid_t pid = -1;

    served_target() {
        const std::string serve = "unix-listen://" + socket, mib = std::to_string(dump_size() >> 20);
        const char* argv[] = {KDCOM_SIM_PATH, "--serve", serve.c_str(), "--dump", mib.c_str(), nullptr};
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        if (::posix_spawn(&pid, KDCOM_SIM_PATH, &actions, nullptr, const_cast<char**>(argv), environ) != 0)
            throw std::runtime_error("cannot start " KDCOM_SIM_PATH);
        posix_spawn_file_actions_destroy(&actions);
        for (int i = 0; i < 500 && !std::filesystem::exists(socket); ++i) std::this_thread::sleep_for(10ms);
    }
    ~served_target() {
        ::kill(pid, SIGTERM);
        ::waitpid(pid, nullptr, 0);
    }
};

served_target& target() {
    static served_target t;
    return t;
}

// A debugger session to the served target on an io_context thread, stopped at a break-in.
struct attached {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    std::shared_ptr<net::session> session;
    std::shared_ptr<kd::client> client;
    std::thread runner;

    attached() {
        failure error;
        std::string path = target().socket;
        auto link = net::open_link(io.get_executor(), *transport::parse_address("unix://" + path, error), role::debugger, error);
        session = net::session::create(std::move(link), {.role = role::debugger});
        client = kd::client::create(session);
        client->start();
        runner = std::thread([this] { io.run(); });
        std::error_code ec;
        client->break_in(ec);
        if (ec) throw std::system_error(ec, "breaking in");
    }
    // Lets the target run, and closes the session.
    ~attached() {
        std::error_code ec;
        client->continue_running(kd::status::dbg_continue, false, ec);
        client->close();
        work.reset();
        runner.join();
    }
};

void BM_DumpWithKdClient(benchmark::State& state) {
    attached a;
    const auto size = dump_size();
    std::uint64_t total = 0;
    for (auto _ : state) {
        std::error_code ec;
        total += a.client->read_memory(kd::memory_space::physical_memory, 0, size,
                                       [](std::uint64_t, std::span<const std::uint8_t> piece) {
                                           benchmark::DoNotOptimize(piece.data());
                                       },
                                       ec);
        if (ec) state.SkipWithError(ec.message().c_str());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(total));
}

// The same reads as a bare loop on a session of its own: send a request, take the next packet as
// its reply. No reply matching, no resynchronisation, no pieces: the floor the client is held to.
void BM_DumpWithSessionLoop(benchmark::State& state) {
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    failure error;
    auto link = net::open_link(io.get_executor(), *transport::parse_address("unix://" + target().socket, error),
                               role::debugger, error);
    auto session = net::session::create(std::move(link), {.role = role::debugger});
    session->start();
    std::thread runner([&] { io.run(); });
    // Break in by hand: press until the state change comes.
    for (;;) {
        asio::post(io, [&] { session->send_breakin(); });
        std::error_code ec;
        auto p = session->receive(1000ms, ec);
        if (p && p->type == wire::packet_type::state_change64) break;
    }
    const auto size = dump_size();
    std::uint64_t total = 0;
    for (auto _ : state) total += bench::dump_with_session_loop(io, *session, 0, size);
    state.SetBytesProcessed(static_cast<std::int64_t>(total));
    kd::manipulate_header h;
    h.api = kd::manipulate_api::continue2;
    h.continuation.status = kd::status::dbg_continue;
    std::uint8_t header[kd::manipulate_header_size];
    kd::encode_manipulate(h, header);
    session->send(wire::packet_type::state_manipulate, header, {}, 5000ms);
    asio::post(io, [&] { session->close(); });
    work.reset();
    runner.join();
}

#define KDCOM_DUMP_BENCHMARK(f) BENCHMARK(f)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1)
KDCOM_DUMP_BENCHMARK(BM_DumpWithSessionLoop);
KDCOM_DUMP_BENCHMARK(BM_DumpWithKdClient);

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    target();
    kdcom::bench::ratio_reporter reporter(std::vector<std::pair<std::string, std::string>>{
        {"BM_DumpWithKdClient/iterations:1/real_time", "BM_DumpWithSessionLoop/iterations:1/real_time"}});
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
