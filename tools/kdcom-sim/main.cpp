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
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <fmt/chrono.h>
#include <fmt/core.h>

#include "../common/address_option.hpp"
#include "../common/capture_option.hpp"
#include "../common/fault_option.hpp"
#include "../common/progress.hpp"
#include "../common/stop_signals.hpp"
#include "../common/terminal_text.hpp"
#include "../common/tool_error.hpp"
#include "../common/tool_main.hpp"
#include "target_machine.hpp"
#include "kdcom/bridge/bridge.hpp"
#include "kdcom/capture/capture_file.hpp"
#include "kdcom/guest/fake_kernel.hpp"
#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/state_change.hpp"
#include "kdcom/net/kd_client.hpp"
#include "kdcom/net/faulty_link.hpp"
#include "kdcom/net/link_pair.hpp"
#include "kdcom/net/open_link.hpp"
#include "kdcom/net/rate_limited_link.hpp"
#include "kdcom/net/shm_link.hpp"

namespace {
using namespace kdcom;
using namespace std::chrono_literals;
using bytes = std::vector<std::uint8_t>;

struct sim_options {
    std::uint64_t dump_mib = 64;
    std::string faults = "loss=0.001,corrupt=0.0005,dup=0.001";
    std::string transport = "unix";
    unsigned rate = 0;
    unsigned seed = 1;
    bool fast_path = false;
    std::string capture;  // empty: a new file in the temp dir (default_capture_path())
    bool no_capture = false, force = false;
    bool separate = false;
    std::string target;  // --target ADDR: only the simulated debugger, against the target there
    std::string serve;   // --serve ADDR: only the simulated target, serving KDCOM there
    std::string part, shm;  // --part kernel --shm NAME: the kernel process of --separate
};

constexpr std::uint64_t kern_base = 0xfffff80000000000u;

// The fake kernel's memory size: the dump's, at least 1 MiB. Every part (the debugger checking
// reads, a kernel in another process, a --serve target) derives it the same way, or reads differ.
std::uint64_t image_size(const sim_options& opt) { return std::max<std::uint64_t>(opt.dump_mib << 20, 1 << 20); }

// --serve ADDR: the simulated target alone (the fake kernel behind the bridge, which speaks KDCOM
// in the target role at ADDR, as kdcom.dll does on a serial port) until SIGINT or SIGTERM.
// A capture name no other run has: the time to the second and this process's id. (create()
// refuses an existing file anyway; this keeps two runs at once from refusing each other.)
std::string default_capture_path() {
    const auto name = fmt::format("kdcom-sim-{:%Y%m%d-%H%M%S}-{}.pcapng", fmt::localtime(std::time(nullptr)), ::getpid());
    return (std::filesystem::temp_directory_path() / name).string();
}

int run_target_only(const sim_options& opt) {
    auto address = tools::parse_address_option(opt.serve, "--serve");
    guest::memory_image memory(image_size(opt), opt.seed);
    asio::io_context io;
    std::string error;
    auto link = net::open_link(io.get_executor(), address, role::target, error, &address);
    if (!link) throw tools::tool_error(error);
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

// A TCP port free now on 127.0.0.1, for a bridge process to listen on.
std::uint16_t free_tcp_port(asio::io_context& io) {
    asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
    return probe.local_endpoint().port();
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
    const std::uint64_t dump_bytes = opt.dump_mib << 20;
    const std::string name = "kdcom-sim-" + std::to_string(::getpid());

    guest::memory_image memory(image_size(opt), opt.seed);
    const guest::memory_image reference(memory.size(), opt.seed);

    asio::io_context io;
    auto work = asio::make_work_guard(io);
    // SIGINT or SIGTERM closes the debugger's session: the step in progress fails, and says why.
    tools::stop_signals signals(io);  // before any socket file exists
    std::error_code ec;
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

    // The debugger's link: a connection of the chosen kind, paced like a serial line if asked,
    // with the faults on what the debugger writes. The target side takes the other end.
    std::unique_ptr<net::link> debugger_side;
    std::unique_ptr<net::link_pair> links;
    std::unique_ptr<tools::target_machine> target;
    endpoint_config dc{.role = role::debugger};
    dc.ack_timeout = bo.endpoint.ack_timeout;
    dc.ack_timeout_min = bo.endpoint.ack_timeout_min;
    dc.ack_timeout_max = bo.endpoint.ack_timeout_max;
    std::optional<transport::address> target_address;
    if (!opt.target.empty()) {
        // The simulated debugger alone, against whatever target is at that address.
        if (opt.separate || opt.fast_path) throw tools::tool_error("--target runs only the debugger: no --separate, no --fast-path");
        std::string error;
        const auto address = tools::parse_address_option(opt.target, "--target");
        target_address = address;
        dc = net::config_for(address, dc);  // ?resets=0
        debugger_side = net::open_link(io.get_executor(), address, role::debugger, error);
        if (!debugger_side) throw tools::tool_error(error);
        target = std::make_unique<tools::external_machine>(address.to_string());
    } else if (opt.separate) {
        if (opt.fast_path) throw tools::tool_error("--fast-path needs the bridge in this process (it reads the guest's memory)");
        const auto self = std::filesystem::read_symlink("/proc/self/exe");
        const auto bridge_program = self.parent_path() / "kdcom-bridge";
        if (!std::filesystem::exists(bridge_program))
            throw tools::tool_error("--separate needs kdcom-bridge beside kdcom-sim, not found at " + bridge_program.string());
        const std::string rate = opt.rate > 0 ? "?rate=" + std::to_string(opt.rate) : "";
        std::string bridge_address;
        if (opt.transport == "unix") {
            const auto path = std::filesystem::temp_directory_path() / (name + ".sock");
            bridge_address = "unix-listen://" + path.string() + rate;
            debugger_side = net::make_unix_client(io.get_executor(), path.string());
        } else if (opt.transport == "tcp") {
            const std::uint16_t port = free_tcp_port(io);
            bridge_address = "tcp-listen://127.0.0.1:" + std::to_string(port) + rate;
            debugger_side = net::make_tcp_client(io.get_executor(), "127.0.0.1", port);
        } else {
            throw tools::tool_error("with --separate, --transport must be unix or tcp");
        }
        target = std::make_unique<tools::separate_machine>(
            bridge_program.string(), name, bridge_address,
            std::vector<std::string>{self.string(), "--part", "kernel", "--shm", name, "--dump", std::to_string(opt.dump_mib),
                                     "--seed", std::to_string(opt.seed)});
    } else {
        const auto kind = net::parse_pair_kind(opt.transport);
        if (!kind) throw tools::tool_error("--transport must be one of mem, unix, tcp, fifo, serial, shm");
        links = net::link_pair::make(io.get_executor(), *kind, ec);
        if (!links) throw tools::tool_error("cannot make the debugger's " + opt.transport + " link: " + ec.message());
        std::unique_ptr<net::link> bridge_side = std::move(links->target);
        debugger_side = std::move(links->debugger);
        if (opt.rate > 0) bridge_side = std::make_unique<net::rate_limited_link>(std::move(bridge_side), opt.rate);
        target = std::make_unique<tools::in_process_machine>(io, name, memory, bo, std::move(bridge_side), kernel_options);
    }
    if (opt.rate > 0) debugger_side = std::make_unique<net::rate_limited_link>(std::move(debugger_side), opt.rate);
    // A lost or unreachable target ends the session (exit 2 with the reason) unless the address
    // asks to reconnect; the simulated machines' own links always reconnect.
    net::session_options session_options;
    if (target_address) session_options.reconnect = target_address->reconnect;
    auto session = net::session::create(std::make_unique<net::faulty_link>(std::move(debugger_side), faults), dc,
                                        session_options);
    if (recording) session->set_tap(capture::capture_tap(recording, role::debugger));
    // Long enough for a packet to cross the line at its rate.
    const auto patience = std::max<std::chrono::milliseconds>(1000ms, 20 * std::chrono::ceil<std::chrono::milliseconds>(dc.ack_timeout_min));
    kd::client_options client_options;
    client_options.breakin_interval = patience;
    client_options.exchange.attempt_timeout = std::max<timestamp>(client_options.exchange.attempt_timeout, 4 * patience);
    std::mutex prints_mutex;
    std::string prints, link_problem;
    kd::client_handlers handlers;
    handlers.print = [&](std::string_view text) {
        std::lock_guard lock(prints_mutex);
        if (prints.size() < 64 * 1024) prints += text;  // shown at the first words only; bounded
    };
    handlers.notice = [&](const net::session_notice& n) {
        if (n.kind != net::session_notice::what::link_failed && n.kind != net::session_notice::what::stream_closed) return;
        std::lock_guard lock(prints_mutex);
        link_problem = n.text;
    };
    auto client = kd::client::create(session, client_options, std::move(handlers));
    asio::post(io, [&] { client->start(); });
    signals.on_stop([&] { client->close(); });
    std::thread io_thread([&] { io.run(); });
    try {
        target->power_on();
    } catch (...) {
        target->switch_off();
        work.reset();
        io.stop();
        io_thread.join();
        throw;
    }

    // A failed step of the debugger: the target unreachable or lost is exit 2 with the reason,
    // anything else a mismatch.
    auto give_up = [&](const std::string& what, std::error_code why) {
        std::lock_guard lock(prints_mutex);
        if (signals.signal()) throw tools::tool_error(signals.describe() + " while the debugger " + what, tools::exit_usage);
        if (why == net::session_errc::closed)
            throw tools::tool_error("the debugger lost the target (" + what + ")" +
                                        (link_problem.empty() ? "" : ": " + link_problem),
                                    tools::exit_usage);
        throw tools::tool_error("the debugger " + what + ": " + why.message(), tools::exit_mismatch);
    };
    // What the target printed since the last look (taken, so a chatty target grows nothing).
    auto new_prints = [&] {
        std::lock_guard lock(prints_mutex);
        return std::exchange(prints, {});
    };
    const auto started = std::chrono::steady_clock::now();
    bool all_matched = true;
    std::uint64_t mismatched_reads = 0;
    try {
        // A booting kernel prints first; one that is running says nothing; one that stopped (at
        // boot, or under an earlier debugger) reports its state after the reset handshake, maybe
        // after a print (Xen's kdd). Listen until a stop, or until the line goes quiet.
        fmt::print("debugger: waiting for the target's first words\n");
        std::optional<kd::stop_report> first;
        bool heard = false;
        for (auto wait = 2 * patience;;) {
            auto stop = client->wait_state_change(wait, ec);
            if (const auto text = new_prints(); !text.empty()) {
                fmt::print("target says: {}", tools::printable(text, tools::line_breaks::keep));
                heard = true;
            }
            if (!ec) {
                first = std::move(stop);
                break;
            }
            if (ec != net::session_errc::timed_out) give_up("waited for the target's first words", ec);
            if (!heard || wait < 2 * patience) break;
            wait = std::max<std::chrono::milliseconds>(300ms, patience / 3);  // a stop right behind the print?
        }
        if (!first && !heard) fmt::print("debugger: the target said nothing (it may be running already)\n");
        if (!first) {
            fmt::print("debugger: break-in (Ctrl+Break)\n");
            first = client->break_in(ec);
            if (ec) give_up("broke in and the target did not stop", ec);
            // A break-in is one byte nobody acknowledges: a lossy line can eat it, and the client
            // presses again, as a user at WinDbg would.
            for (unsigned press = 1; press < client->breakin_presses(); ++press)
                fmt::print("debugger: the target did not stop; Ctrl+Break again\n");
        } else {
            fmt::print("debugger: the target is stopped already\n");
        }
        fmt::print("target: Break instruction exception - code {:08x} at {:#x}\n", first->header.exception.code,
                   first->header.program_counter);

        const auto version = client->get_version(ec);
        if (ec) give_up("asked for the version", ec);
        fmt::print("debugger: Windows {}.{} kernel, machine {:#x}, kernel base {:#x}\n", version.major_version,
                   version.minor_version, version.machine_type, version.kern_base);

        fmt::print("debugger: dumping {} MiB of physical memory in {}-byte reads{}\n", opt.dump_mib,
                   client_options.max_transfer, opt.fast_path ? " (fast path: the host answers)" : "");
        tools::progress_meter progress("dump", dump_bytes);
        const auto dump_start = std::chrono::steady_clock::now();
        // The reads go one after another on the session's own thread, as fast as the link allows,
        // each piece checked as it arrives; this thread shows the progress.
        std::atomic<std::uint64_t> done_bytes{0};
        std::vector<std::uint8_t> expected(client_options.max_transfer);
        auto dumped = client->async_read_memory(
            kd::memory_space::physical_memory, 0, dump_bytes,
            [&](std::uint64_t offset, std::span<const std::uint8_t> piece) {
                const auto want = std::span(expected).first(piece.size());
                reference.read(offset, want);
                if (!std::equal(want.begin(), want.end(), piece.begin())) {
                    all_matched = false;
                    ++mismatched_reads;
                }
                done_bytes = offset + piece.size();
            },
            asio::use_future);
        while (dumped.wait_for(100ms) != std::future_status::ready) progress.update(done_bytes);
        try {
            dumped.get();
        } catch (const std::system_error& e) {
            give_up(fmt::format("stopped the dump after {} of {} bytes", done_bytes.load(), dump_bytes), e.code());
        }
        progress.finish();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - dump_start).count();
        fmt::print("debugger: dump done, {:.1f} MB/s{}\n", static_cast<double>(dump_bytes) / seconds / 1e6,
                   mismatched_reads ? fmt::format(", {} reads did NOT match the image", mismatched_reads) : ", every byte matched");

        const bytes pattern(64, 0xC3);
        const auto written = client->write_memory(kd::memory_space::virtual_memory, kern_base + 0x2000, pattern, ec);
        if (ec) give_up("wrote memory", ec);
        const auto back = client->read_memory(kd::memory_space::virtual_memory, kern_base + 0x2000, 64, ec);
        if (ec) give_up("read back what it wrote", ec);
        const bool write_ok = written == 64 && back == pattern;
        all_matched &= write_ok;
        fmt::print("debugger: wrote 64 bytes at {:#x} and read them back: {}\n", kern_base + 0x2000,
                   write_ok ? "same" : "DIFFERENT");
        fmt::print("debugger: g (continue)\n");
        client->continue_running(kd::status::dbg_continue, false, ec);
        if (ec) give_up("continued", ec);
    } catch (...) {
        target->switch_off();
        client->close();
        asio::post(io, [&] { signals.cancel(); });
        work.reset();
        io_thread.join();
        throw;
    }
    std::this_thread::sleep_for(50ms);
    target->switch_off();

    const auto ds = client->stats();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    fmt::print("\n{:<40} {:>12}\n", "summary", "");
    fmt::print("{:<40} {:>12}\n", "packets debugger -> target", ds.packets_sent);
    fmt::print("{:<40} {:>12}\n", "packets target -> debugger", ds.packets_received);
    fmt::print("{:<40} {:>12}\n", "retransmissions by the debugger", ds.retransmissions);
    fmt::print("{:<40} {:>12}\n", "framing errors seen by the debugger", ds.framing_errors);
    fmt::print("{:<40} {:>12}\n", "duplicates dropped by the debugger", ds.duplicates_received);
    fmt::print("{:<40} {:>12}\n", "link resets (resyncs)", ds.resets_sent);
    target->print_summary();
    fmt::print("{:<40} {:>12.1f}\n", "seconds", seconds);
    fmt::print("{:<40} {:>12}\n", "result", all_matched ? "all reads matched" : "MISMATCH");
    if (recording) {
        fmt::print("capture: {} ({} records; kdcom-dump or Wireshark with tools/wireshark/kdcom.lua read it)\n",
                   recording->path(), recording->records());
        if (const auto e = recording->error()) fmt::print("capture stopped early: {}\n", e.message());
    }

    client->close();
    asio::post(io, [&] { signals.cancel(); });
    work.reset();
    io_thread.join();
    return all_matched ? tools::exit_ok : tools::exit_mismatch;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Watch a Windows kernel debugger session work, end to end, in one process: a simulated "
                 "debugger, the kdcom bridge, and a fake kernel behind guest shared memory."};
    sim_options opt;
    // Checked here, for every mode: the memory image (and --serve's) is this size too.
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
