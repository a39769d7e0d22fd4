// kdcom-sim: the whole machine in one process, for anyone who has never seen a Windows kernel
// debugger work. A simulated debugger connects over a local socket (with light faults) to the
// bridge; the bridge reaches a fake kernel over shared memory, as a VMM plugin would reach a guest.
// The debugger breaks in, asks for the version, dumps memory in the largest reads a packet allows,
// writes, continues, and takes the kernel's DbgPrint output. Exit status 0 only if every byte read
// was the fake memory image's.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <fmt/chrono.h>
#include <fmt/core.h>

#include "../common/address_option.hpp"
#include "../common/capture_option.hpp"
#include "../common/fault_option.hpp"
#include "../common/scope_exit.hpp"
#include "../common/stop_signals.hpp"
#include "../common/tool_error.hpp"
#include "../common/tool_main.hpp"
#include "debugger_line.hpp"
#include "sim_options.hpp"
#include "simulated_debugger.hpp"
#include "target_machine.hpp"
#include "kdcom/bridge/bridge.hpp"
#include "kdcom/capture/capture_file.hpp"
#include "kdcom/guest/fake_kernel.hpp"
#include "kdcom/net/kd_client.hpp"
#include "kdcom/net/faulty_link.hpp"
#include "kdcom/net/open_link.hpp"

namespace {
using namespace kdcom;
using namespace std::chrono_literals;
using tools::kern_base;
using tools::sim_options;

// A capture name no other run has: the time to the second and this process's id. (create()
// refuses an existing file anyway; this keeps two runs at once from refusing each other.)
std::string default_capture_path() {
    const auto name = fmt::format("kdcom-sim-{:%Y%m%d-%H%M%S}-{}.pcapng", fmt::localtime(std::time(nullptr)), ::getpid());
    return (std::filesystem::temp_directory_path() / name).string();
}

// --serve ADDR: the simulated target alone (the fake kernel behind the bridge, which speaks KDCOM
// in the target role at ADDR, as kdcom.dll does on a serial port) until SIGINT or SIGTERM.
int run_target_only(const sim_options& opt) {
    auto address = tools::parse_address_option(opt.serve, "--serve");
    guest::memory_image memory(image_size(opt), opt.seed);
    asio::io_context io;
    failure error;
    auto link = net::open_link(io.get_executor(), address, role::target, error, &address);
    if (!link) throw tools::tool_error(error.message());
    bridge::options bo;
    bo.endpoint = net::config_for(address, bo.endpoint);
    tools::in_process_machine target(io, "kdcom-sim-" + std::to_string(::getpid()), memory, bo, std::move(link),
                                     {.kern_base = kern_base, .receive_timeout = 100ms});
    asio::signal_set stop(io, SIGINT, SIGTERM);
    stop.async_wait([&](std::error_code ec, int) {
        if (!ec) io.stop();
    });
    fmt::print("simulated target: a fake kernel ({} MiB image, seed {}) serving KDCOM at {}\n", opt.dump_mib, opt.seed,
               address.to_string());
    std::fflush(stdout);
    std::thread io_thread([&] { io.run(); });
    target.power_on();
    io_thread.join();  // until a signal
    io.restart();
    std::thread closing([&] { io.run_for(2s); });
    target.switch_off();
    closing.join();
    target.print_summary();
    return tools::exit_ok;
}

// --part kernel: the fake kernel as a process of its own, attached to shm://NAME, until SIGTERM
// (which also interrupts the call the kernel is waiting in, if any).
std::atomic<bool> kernel_switched_off{false};
std::atomic<kdcom_guest*> kernel_guest{nullptr};

int run_kernel_part(const sim_options& opt) {
    if (opt.shm.empty()) throw tools::tool_error("--part kernel needs --shm NAME");
    struct sigaction off {};
    off.sa_handler = [](int) {  // lock-free stores and write(2): async-signal-safe
        kernel_switched_off = true;
        if (auto* g = kernel_guest.load()) kdcom_guest_interrupt(g);
    };
    ::sigaction(SIGTERM, &off, nullptr);
    ::sigaction(SIGINT, &off, nullptr);
    guest::memory_image memory(image_size(opt), opt.seed);
    char error[256] = {};
    kdcom_guest* guest = nullptr;
    for (int attempt = 0; !guest && attempt < 100 && !kernel_switched_off; ++attempt) {
        guest = kdcom_guest_attach(opt.shm.c_str(), error, sizeof error);
        if (!guest) std::this_thread::sleep_for(100ms);
    }
    if (!guest) throw tools::tool_error(std::string("the kernel could not attach: ") + error);
    kernel_guest = guest;
    if (kernel_switched_off) kdcom_guest_interrupt(guest);  // the signal came while attaching
    guest::fake_kernel kernel(guest, memory, {.kern_base = kern_base, .receive_timeout = 100ms});
    kernel.print("fake kernel: booted in a process of its own, waiting for the debugger\n");
    kernel.run(kernel_switched_off);
    fmt::print("fake kernel: switched off after {} requests, {} bytes read\n", kernel.stats().requests,
               kernel.stats().bytes_read);
    kernel_guest = nullptr;
    kdcom_guest_detach(guest);
    return tools::exit_ok;
}

int run(const sim_options& opt) {
    if (opt.part == "kernel") return run_kernel_part(opt);
    if (!opt.serve.empty()) return run_target_only(opt);
    const net::link_faults faults = tools::parse_faults(opt.faults, opt.seed);
    const std::string name = "kdcom-sim-" + std::to_string(::getpid());

    guest::memory_image memory(image_size(opt), opt.seed);
    const guest::memory_image reference(memory.size(), opt.seed);

    asio::io_context io;
    auto work = asio::make_work_guard(io);
    // SIGINT or SIGTERM closes the debugger's session: the step in progress fails, and says why.
    tools::stop_signals signals(io);  // before any socket file exists
    bridge::options bo;
    // The ACK timer adapts to the link by itself; a paced line only needs its floor and ceiling
    // above the time a whole packet takes to cross it.
    if (opt.rate > 0) {
        const auto packet_time = std::chrono::milliseconds(2 + 1000 * 10 * 4100 / opt.rate);
        bo.endpoint.ack_timeout_min = packet_time;
        bo.endpoint.ack_timeout_max = std::max<timestamp>(bo.endpoint.ack_timeout_max, 4 * packet_time);
        bo.endpoint.ack_timeout = std::max<timestamp>(bo.endpoint.ack_timeout, 2 * packet_time);
    }
    if (opt.fast_path)
        bo.read_physical = [&memory](std::uint64_t a, std::span<std::uint8_t> out) { return memory.read(a, out); };
    const guest::fake_kernel_options kernel_options{.kern_base = kern_base, .receive_timeout = 100ms};

    // The capture is taken where a debugger would see the wire: at the simulated debugger.
    std::shared_ptr<capture::capture_file> recording;
    if (!opt.no_capture)
        recording = tools::open_capture(opt.capture.empty() ? default_capture_path() : opt.capture,
                                        {"kdcom-sim", "simulated debugger", "kdcom-sim bridge (" + opt.transport + ")"},
                                        opt.force);

    // The debugger's line, with the faults on what the debugger writes. A lost or unreachable
    // target ends the session (exit 2 with the reason) unless the address asks to reconnect; the
    // simulated machines' own links always reconnect.
    auto line = tools::connect_debugger(opt, io, name, memory, bo, kernel_options);
    net::session_options session_options;
    if (line.target_address) session_options.reconnect = line.target_address->reconnect;
    auto session = net::session::create(std::make_unique<net::faulty_link>(std::move(line.link), faults), line.config,
                                        session_options);
    if (recording) session->set_tap(capture::capture_tap(recording, role::debugger));
    // Long enough for a packet to cross the line at its rate.
    const auto patience =
        std::max<std::chrono::milliseconds>(1000ms, 20 * std::chrono::ceil<std::chrono::milliseconds>(line.config.ack_timeout_min));
    kd::client_options client_options;
    client_options.breakin_interval = patience;
    client_options.exchange.attempt_timeout = std::max<timestamp>(client_options.exchange.attempt_timeout, 4 * patience);
    tools::target_words words;
    auto client = kd::client::create(session, client_options, words.handlers());
    asio::post(io, [&] { client->start(); });
    signals.on_stop([&] { client->close(); });

    // The session runs on its own thread; however the run ends, the target is switched off and
    // the client closed before that thread is let go.
    std::thread io_thread([&] { io.run(); });
    const tools::at_scope_exit stop_everything{[&] {
        line.target->switch_off();
        client->close();
        asio::post(io, [&] { signals.cancel(); });
        work.reset();
        io_thread.join();
    }};
    line.target->power_on();
    const auto started = std::chrono::steady_clock::now();
    const bool all_matched = tools::run_debugger_steps(
        *client, words, signals, reference,
        {.dump_mib = opt.dump_mib,
         .fast_path = opt.fast_path,
         .patience = patience,
         .max_transfer = client_options.max_transfer,
         .reboot_midway = opt.reboot_midway});
    std::this_thread::sleep_for(50ms);
    line.target->switch_off();

    const auto ds = client->stats();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    fmt::print("\n{:<40} {:>12}\n", "summary", "");
    fmt::print("{:<40} {:>12}\n", "packets debugger -> target", ds.packets_sent);
    fmt::print("{:<40} {:>12}\n", "packets target -> debugger", ds.packets_received);
    fmt::print("{:<40} {:>12}\n", "retransmissions by the debugger", ds.retransmissions);
    fmt::print("{:<40} {:>12}\n", "framing errors seen by the debugger", ds.framing_errors);
    fmt::print("{:<40} {:>12}\n", "duplicates dropped by the debugger", ds.duplicates_received);
    fmt::print("{:<40} {:>12}\n", "link resets (resyncs)", ds.resets_sent);
    line.target->print_summary();
    fmt::print("{:<40} {:>12.1f}\n", "seconds", seconds);
    fmt::print("{:<40} {:>12}\n", "result", all_matched ? "all reads matched" : "MISMATCH");
    if (recording) {
        fmt::print("capture: {} ({} records; kdcom-dump or Wireshark with tools/wireshark/kdcom.lua read it)\n",
                   recording->path(), recording->records());
        if (const auto e = recording->error()) fmt::print("capture stopped early: {}\n", e.message());
    }
    return all_matched ? tools::exit_ok : tools::exit_mismatch;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Watch a Windows kernel debugger session work, end to end, in one process: a simulated "
                 "debugger, the kdcom bridge, and a fake kernel behind guest shared memory."};
    sim_options opt;
    // Checked here, for every mode: the memory image (and --serve's) is this size too.
    app.add_flag("--reboot-midway", opt.reboot_midway,
                 "Reboot the target (.reboot) halfway through the dump, wait for its new boot, break in again and "
                 "dump the rest");
    app.add_option("--dump", opt.dump_mib, "MiB of physical memory to read (1 to 4096)")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{4096}));
    app.add_option("--faults", opt.faults, "Faults on what the debugger writes: loss=P,corrupt=P,dup=P,garbage=P")
        ->capture_default_str();
    app.add_option("--transport", opt.transport, "The debugger's link: mem, unix, tcp, fifo, serial (a pty) or shm")
        ->capture_default_str();
    app.add_option("--rate", opt.rate, "Pace the debugger's link like a serial line of this many bits/s (e.g. 115200)")
        ->check(CLI::Range(300u, 100000000u));
    app.add_option("--seed", opt.seed, "Seed for the memory image and the faults")->capture_default_str();
    app.add_flag("--fast-path", opt.fast_path, "Let the bridge answer physical reads from guest memory");
    app.add_option("--capture", opt.capture,
                   "Record the debugger's link in this pcapng file (default: a new kdcom-sim-DATE-TIME-PID.pcapng "
                   "in the temp dir)");
    app.add_flag("--force", opt.force, "Overwrite the capture file if it exists");
    app.add_flag("--no-capture", opt.no_capture, "Record nothing");
    app.add_flag("--separate", opt.separate,
                 "Run the bridge (kdcom-bridge) and the fake kernel as processes of their own (transport unix or tcp)");
    app.add_option("--target", opt.target,
                   "Run only the simulated debugger, against the target at this address (a kdcom-sim --serve, a "
                   "kdcom-bridge, a VM's serial port: tcp://, unix://, serial://, fifo://, ...)");
    app.add_option("--serve", opt.serve,
                   "Run only the simulated target (the fake kernel behind the bridge), serving KDCOM at this address "
                   "until interrupted (tcp-listen://, unix-listen://, serial://, fifo://, ...)");
    app.add_option("--part", opt.part, "Internal: run only this part (kernel), for --separate")
        ->check(CLI::IsMember({"kernel"}))
        ->group("");
    app.add_option("--shm", opt.shm, "Internal: the shared memory the kernel part attaches to")->group("");
    return kdcom::tools::tool_main("kdcom-sim", app, argc, argv, [&] { return run(opt); });
}
