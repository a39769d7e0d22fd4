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
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <fmt/core.h>

#include "../common/address_option.hpp"
#include "../common/capture_option.hpp"
#include "../common/fault_option.hpp"
#include "../common/progress.hpp"
#include "../common/tool_error.hpp"
#include "../common/tool_main.hpp"
#include "target_machine.hpp"
#include "kdcom/bridge/bridge.hpp"
#include "kdcom/capture/capture_file.hpp"
#include "kdcom/guest/fake_kernel.hpp"
#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/state_change.hpp"
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
    std::string capture = (std::filesystem::temp_directory_path() / "kdcom-sim.pcapng").string();
    bool no_capture = false;
    bool separate = false;
    std::string target;  // --target ADDR: only the simulated debugger, against the target there
    std::string serve;   // --serve ADDR: only the simulated target, serving KDCOM there
    std::string part, shm;  // --part kernel --shm NAME: the kernel process of --separate
};

constexpr std::uint64_t kern_base = 0xfffff80000000000u;
constexpr std::uint32_t max_read = wire::default_max_body - kd::manipulate_header_size;

// The debugger's side: blocking calls on a session that runs on the io_context thread.
class simulated_debugger {
public:
    explicit simulated_debugger(net::session& s) : session_(s) {}

    net::received_packet next(wire::packet_type type) {
        auto p = next_within(type, 10000ms);
        if (!p)
            throw tools::tool_error("the debugger waited in vain for " + std::string(wire::packet_type_name(type)),
                                    tools::exit_mismatch);
        return *p;
    }

    // Breaks in and returns the target's state change. A break-in is one byte nobody
    // acknowledges, so a lossy line can eat it: like a user at WinDbg, the debugger presses
    // Ctrl+Break again when the target has not stopped within `patience`.
    net::received_packet break_in(std::chrono::milliseconds patience) {
        constexpr int presses = 10;
        for (int press = 1; press <= presses; ++press) {
            asio::post(session_.get_executor(), [&s = session_] { s.send_breakin(); });
            if (auto p = next_within(wire::packet_type::state_change64, patience)) return *p;
            if (press < presses) fmt::print("debugger: the target did not stop; Ctrl+Break again\n");
        }
        throw tools::tool_error("the target did not stop after " + std::to_string(presses) + " break-ins", tools::exit_mismatch);
    }

    // The next packet of `type` (DbgPrint text on the way is kept), or nothing if `patience`
    // passes first.
    std::optional<net::received_packet> next_within(wire::packet_type type, std::chrono::milliseconds patience) {
        return next_within({type}, patience);
    }
    // The next packet of one of `types`.
    std::optional<net::received_packet> next_within(std::initializer_list<wire::packet_type> types,
                                                    std::chrono::milliseconds patience) {
        const auto deadline = std::chrono::steady_clock::now() + patience;
        for (;;) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left <= 0ms) return std::nullopt;
            std::error_code ec;
            auto p = session_.receive(left, ec);
            if (!p && ec == net::session_errc::timed_out) return std::nullopt;
            if (!p)
                throw tools::tool_error("the debugger's session ended waiting for " +
                                            std::string(wire::packet_type_name(*types.begin())) + ": " + ec.message(),
                                        tools::exit_mismatch);
            if (p->type == wire::packet_type::debug_io && p->body.size() >= 16)
                prints_ += std::string(p->body.begin() + 16, p->body.end());
            if (std::find(types.begin(), types.end(), p->type) != types.end()) return p;
        }
    }

    kd::manipulate_header ask(kd::manipulate_header request, std::span<const std::uint8_t> data, bytes& reply_data) {
        std::uint8_t header[kd::manipulate_header_size];
        kd::encode_manipulate(request, header);
        if (auto ec = session_.send(wire::packet_type::state_manipulate, header, data, 10000ms))
            throw tools::tool_error("the debugger's request went unanswered: " + ec.message(), tools::exit_mismatch);
        const auto reply = next(wire::packet_type::state_manipulate);
        const auto h = kd::decode_manipulate(reply.body);
        if (!h) throw tools::tool_error("a reply too short for a manipulate header", tools::exit_mismatch);
        reply_data.assign(reply.body.begin() + kd::manipulate_header_size, reply.body.end());
        return *h;
    }

    void continue_running() {
        kd::manipulate_header h;
        h.api = kd::manipulate_api::continue2;
        h.continuation.status = 0x00010002;  // DBG_CONTINUE
        std::uint8_t header[kd::manipulate_header_size];
        kd::encode_manipulate(h, header);
        session_.send(wire::packet_type::state_manipulate, header, {}, 10000ms);
    }

    const std::string& prints() const { return prints_; }

private:
    net::session& session_;
    std::string prints_;
};

// The fake kernel's memory size: the dump's, at least 1 MiB. Every part (the debugger checking
// reads, a kernel in another process, a --serve target) derives it the same way, or reads differ.
std::uint64_t image_size(const sim_options& opt) { return std::max<std::uint64_t>(opt.dump_mib << 20, 1 << 20); }

// --serve ADDR: the simulated target alone (the fake kernel behind the bridge, which speaks KDCOM
// in the target role at ADDR, as kdcom.dll does on a serial port) until SIGINT or SIGTERM.
int run_target_only(const sim_options& opt) {
    const auto address = tools::parse_address_option(opt.serve, "--serve");
    guest::memory_image memory(image_size(opt), opt.seed);
    asio::io_context io;
    std::string error;
    auto link = net::open_link(io.get_executor(), address, role::target, error);
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

// --part kernel: the fake kernel as a process of its own, attached to shm://NAME, until SIGTERM.
std::atomic<bool> kernel_switched_off{false};

int run_kernel_part(const sim_options& opt) {
    if (opt.shm.empty()) throw tools::tool_error("--part kernel needs --shm NAME");
    struct sigaction off {};
    off.sa_handler = [](int) { kernel_switched_off = true; };  // a lock-free store: async-signal-safe
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
    guest::fake_kernel kernel(guest, memory, {.kern_base = kern_base, .receive_timeout = 100ms});
    kernel.print("fake kernel: booted in a process of its own, waiting for the debugger\n");
    kernel.run(kernel_switched_off);
    fmt::print("fake kernel: switched off after {} requests, {} bytes read\n", kernel.stats().requests,
               kernel.stats().bytes_read);
    kdcom_guest_detach(guest);
    return tools::exit_ok;
}

int run(const sim_options& opt) {
    if (opt.part == "kernel") return run_kernel_part(opt);
    if (!opt.serve.empty()) return run_target_only(opt);
    const net::link_faults faults = tools::parse_faults(opt.faults, opt.seed);
    if (opt.dump_mib == 0 || opt.dump_mib > 4096) throw tools::tool_error("--dump must be 1 to 4096 MiB");
    const std::uint64_t dump_bytes = opt.dump_mib << 20;
    const std::string name = "kdcom-sim-" + std::to_string(::getpid());

    guest::memory_image memory(image_size(opt), opt.seed);
    const guest::memory_image reference(memory.size(), opt.seed);

    asio::io_context io;
    auto work = asio::make_work_guard(io);
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
        recording = tools::open_capture(opt.capture, {"kdcom-sim", "simulated debugger", "kdcom-sim bridge (" + opt.transport + ")"});

    // The debugger's link: a connection of the chosen kind, paced like a serial line if asked,
    // with the faults on what the debugger writes. The target side takes the other end.
    std::unique_ptr<net::link> debugger_side;
    std::unique_ptr<net::link_pair> links;
    std::unique_ptr<tools::target_machine> target;
    endpoint_config dc{.role = role::debugger};
    dc.ack_timeout = bo.endpoint.ack_timeout;
    dc.ack_timeout_min = bo.endpoint.ack_timeout_min;
    dc.ack_timeout_max = bo.endpoint.ack_timeout_max;
    if (!opt.target.empty()) {
        // The simulated debugger alone, against whatever target is at that address.
        if (opt.separate || opt.fast_path) throw tools::tool_error("--target runs only the debugger: no --separate, no --fast-path");
        std::string error;
        const auto address = tools::parse_address_option(opt.target, "--target");
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
        const std::string log = (std::filesystem::temp_directory_path() / (name + ".log")).string();
        target = std::make_unique<tools::separate_machine>(
            bridge_program.string(), name, bridge_address,
            std::vector<std::string>{self.string(), "--part", "kernel", "--shm", name, "--dump", std::to_string(opt.dump_mib),
                                     "--seed", std::to_string(opt.seed)},
            log);
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
    auto session = net::session::create(std::make_unique<net::faulty_link>(std::move(debugger_side), faults), dc);
    if (recording) session->set_tap(capture::capture_tap(recording, role::debugger));
    session->start();
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

    simulated_debugger debugger(*session);
    const auto started = std::chrono::steady_clock::now();
    bool all_matched = true;
    std::uint64_t mismatched_reads = 0;
    try {
        // Long enough for a packet to cross the line at its rate.
        const auto patience = std::max<std::chrono::milliseconds>(1000ms, 20 * std::chrono::ceil<std::chrono::milliseconds>(dc.ack_timeout_min));
        // A booting kernel prints first; one that is running says nothing; one that stopped (at
        // boot, or under an earlier debugger) reports its state after the reset handshake, maybe
        // after a print (Xen's kdd). Listen until a stop, or until the line goes quiet.
        fmt::print("debugger: waiting for the target's first words\n");
        std::optional<net::received_packet> first;
        std::size_t shown = 0;  // of the prints
        for (auto wait = 2 * patience;;) {
            first = debugger.next_within({wire::packet_type::debug_io, wire::packet_type::state_change64}, wait);
            if (!first || first->type == wire::packet_type::state_change64) break;
            fmt::print("target says: {}", debugger.prints().substr(shown));
            shown = debugger.prints().size();
            wait = std::max<std::chrono::milliseconds>(300ms, patience / 3);  // a stop right behind it?
        }
        if (!first && debugger.prints().empty()) fmt::print("debugger: the target said nothing (it may be running already)\n");
        if (!first) {
            fmt::print("debugger: break-in (Ctrl+Break)\n");
            first = debugger.break_in(patience);
        } else {
            fmt::print("debugger: the target is stopped already\n");
        }
        const auto stopped = kd::decode_state_change(first->body);
        fmt::print("target: Break instruction exception - code {:08x} at {:#x}\n", stopped ? stopped->exception.code : 0,
                   stopped ? stopped->program_counter : 0);

        bytes data;
        kd::manipulate_header request;
        request.api = kd::manipulate_api::get_version;
        const auto version = debugger.ask(request, {}, data);
        fmt::print("debugger: Windows {}.{} kernel, machine {:#x}, kernel base {:#x}\n", version.version.major_version,
                   version.version.minor_version, version.version.machine_type, version.version.kern_base);

        fmt::print("debugger: dumping {} MiB of physical memory in {}-byte reads{}\n", opt.dump_mib, max_read,
                   opt.fast_path ? " (fast path: the host answers)" : "");
        tools::progress_meter progress("dump", dump_bytes);
        const auto dump_start = std::chrono::steady_clock::now();
        // The reads go one after another on the session's own thread, as fast as the link allows;
        // this thread shows the progress.
        std::atomic<std::uint64_t> done_bytes{0};
        std::promise<void> finished;
        std::function<void(std::uint64_t)> read_from = [&](std::uint64_t at) {
            if (at >= dump_bytes) return finished.set_value();
            kd::manipulate_header r;
            r.api = kd::manipulate_api::read_physical_memory;
            r.memory = {at, static_cast<std::uint32_t>(std::min<std::uint64_t>(max_read, dump_bytes - at)), 0};
            std::uint8_t header[kd::manipulate_header_size];
            kd::encode_manipulate(r, header);
            session->async_send(wire::packet_type::state_manipulate, header, {}, [](std::error_code) {});
            session->async_receive([&, at, count = r.memory.transfer_count](std::error_code e, net::received_packet p) {
                if (e) return finished.set_value();
                const auto h = kd::decode_manipulate(p.body);
                bytes expected(count);
                reference.read(at, expected);
                if (!h || h->memory.actual_bytes != count ||
                    !std::equal(expected.begin(), expected.end(), p.body.begin() + kd::manipulate_header_size,
                                p.body.end())) {
                    all_matched = false;
                    ++mismatched_reads;
                }
                done_bytes = at + count;
                read_from(at + count);
            });
        };
        asio::post(io, [&] { read_from(0); });
        auto finishing = finished.get_future();
        while (finishing.wait_for(100ms) != std::future_status::ready) progress.update(done_bytes);
        if (done_bytes != dump_bytes) throw tools::tool_error("the dump stopped early", tools::exit_mismatch);
        progress.finish();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - dump_start).count();
        fmt::print("debugger: dump done, {:.1f} MB/s{}\n", static_cast<double>(dump_bytes) / seconds / 1e6,
                   mismatched_reads ? fmt::format(", {} reads did NOT match the image", mismatched_reads) : ", every byte matched");

        const bytes pattern(64, 0xC3);
        request = {};
        request.api = kd::manipulate_api::write_virtual_memory;
        request.memory = {kern_base + 0x2000, 64, 0};
        const auto written = debugger.ask(request, pattern, data);
        request.api = kd::manipulate_api::read_virtual_memory;
        debugger.ask(request, {}, data);
        const bool write_ok = written.memory.actual_bytes == 64 && data == pattern;
        all_matched &= write_ok;
        fmt::print("debugger: wrote 64 bytes at {:#x} and read them back: {}\n", kern_base + 0x2000,
                   write_ok ? "same" : "DIFFERENT");
        fmt::print("debugger: g (continue)\n");
        debugger.continue_running();
    } catch (...) {
        target->switch_off();
        asio::post(io, [&] { session->close(); });
        work.reset();
        io_thread.join();
        throw;
    }
    std::this_thread::sleep_for(50ms);
    target->switch_off();

    std::promise<endpoint_stats> figures;
    asio::post(io, [&] { figures.set_value(session->protocol().stats()); });
    const auto ds = figures.get_future().get();
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

    asio::post(io, [&] { session->close(); });
    work.reset();
    io_thread.join();
    return all_matched ? tools::exit_ok : tools::exit_mismatch;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Watch a Windows kernel debugger session work, end to end, in one process: a simulated "
                 "debugger, the kdcom bridge, and a fake kernel behind guest shared memory."};
    sim_options opt;
    app.add_option("--dump", opt.dump_mib, "MiB of physical memory to read")->capture_default_str();
    app.add_option("--faults", opt.faults, "Faults on what the debugger writes: loss=P,corrupt=P,dup=P,garbage=P")
        ->capture_default_str();
    app.add_option("--transport", opt.transport, "The debugger's link: mem, unix, tcp, fifo, serial (a pty) or shm")
        ->capture_default_str();
    app.add_option("--rate", opt.rate, "Pace the debugger's link like a serial line of this many bits/s (e.g. 115200)")
        ->check(CLI::Range(300u, 100000000u));
    app.add_option("--seed", opt.seed, "Seed for the memory image and the faults")->capture_default_str();
    app.add_flag("--fast-path", opt.fast_path, "Let the bridge answer physical reads from guest memory");
    app.add_option("--capture", opt.capture, "Record the debugger's link in this pcapng file")->capture_default_str();
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
