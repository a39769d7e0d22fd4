// kdcom-bridge: a guest's KD packets over shared memory on one side, KDCOM in the target role toward
// an unmodified debugger on the other. Prints what happens as it happens, statistics on SIGUSR1
// and at exit, and stops cleanly on SIGINT or SIGTERM.
#include <chrono>
#include <csignal>

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <fmt/format.h>

#include "../common/address_option.hpp"
#include "../common/capture_option.hpp"
#include "../common/notice_log.hpp"
#include "../common/tool_error.hpp"
#include "../common/tool_main.hpp"
#include "kdcom/bridge/bridge.hpp"
#include "kdcom/capture/capture_file.hpp"
#include "kdcom/net/open_link.hpp"

namespace {
using namespace kdcom;

struct bridge_options {
    std::string guest = "shm://kdcom";
    std::string debugger = "unix-listen:///tmp/kdcom-kd.sock";
    std::string capture;
    bool force = false;
};

void print_statistics(bridge::bridge& b) {
    const auto s = b.stats();
    const auto& e = b.debugger_session().protocol().stats();
    fmt::print("statistics: guest calls {}, answers {} (crossings {}); packets to the debugger {}, to the guest {} "
               "({} with a send's answer), dropped {}; fast-path reads {}; retransmissions {}, resends asked {}, resets {}; bytes out {}, in {}; "
               "frames dropped for a debugger that does not read {}; guests attached {}, dropped for errors {}\n",
               s.guest_calls, s.guest_answers, s.guest_calls + s.guest_answers, s.packets_to_debugger,
               s.packets_to_guest, s.packets_carried, s.packets_dropped, s.fast_path_reads, e.retransmissions, e.resends_received,
               e.resets_received, e.bytes_sent, e.bytes_received, b.debugger_session().frames_dropped(), s.guests_attached,
               s.guest_errors);
    std::fflush(stdout);
}

int run(const bridge_options& opt) {
    const auto guest_address = tools::parse_address_option(opt.guest, "guest");
    const bool guest_side_ok = (guest_address.kind == transport::address_kind::shared_memory && !guest_address.shm_guest) ||
                               guest_address.kind == transport::address_kind::ivshmem;
    if (!guest_side_ok)
        throw tools::tool_error("the guest address must be shm://NAME or ivshmem:///PATH[?plain] (this side creates the shared memory)",
                                tools::exit_usage);
    auto debugger_address = tools::parse_address_option(opt.debugger, "debugger");

    asio::io_context io;
    // Listening before any socket file exists: a signal from then on is queued for the waits
    // below, so the bridge stops cleanly and removes its sockets instead of dying with them there.
    asio::signal_set stop(io, SIGINT, SIGTERM), report(io, SIGUSR1);
    failure error;
    auto guest = net::open_link(io.get_executor(), guest_address, role::target, error);
    if (!guest) throw tools::tool_error(error.message(), tools::exit_usage);
    auto debugger = net::open_link(io.get_executor(), debugger_address, role::target, error, &debugger_address);
    if (!debugger) throw tools::tool_error(error.message(), tools::exit_usage);

    tools::notice_log notices(stdout);  // a guest or debugger can provoke notices at will; outlives b
    bridge::options options;
    options.endpoint = net::config_for(debugger_address, {});
    auto b = bridge::bridge::create(std::move(guest), std::move(debugger), options);
    std::shared_ptr<capture::capture_file> recording;
    if (!opt.capture.empty()) {
        recording = tools::open_capture(opt.capture, {"kdcom-bridge", debugger_address.to_string(),
                                                      "guest " + guest_address.to_string()},
                                    opt.force);
        b->debugger_session().set_tap(capture::capture_tap(recording, role::target));
    }
    b->set_notice_handler([&](const std::string& text) { notices.print(text); });
    fmt::print("kdcom-bridge: guest {}, debugger {}\n", guest_address.to_string(), debugger_address.to_string());
    std::fflush(stdout);
    b->start();

    stop.async_wait([&](std::error_code ec, int signal) {
        if (ec) return;
        notices.finish();
        fmt::print("kdcom-bridge: {}, stopping\n", signal == SIGINT ? "interrupted" : "terminated");
        report.cancel();
        b->close();
    });
    std::function<void()> wait_for_report = [&] {
        report.async_wait([&](std::error_code ec, int) {
            if (ec) return;
            print_statistics(*b);
            wait_for_report();
        });
    };
    wait_for_report();
    io.run();
    notices.finish();
    print_statistics(*b);
    if (recording) fmt::print("{}\n", tools::finish_capture(*recording));
    return tools::exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Run KDCOM host-side for a guest: the guest's KD packets arrive over shared memory, "
                 "the debugger (WinDbg, kd) attaches over a pipe, socket or serial line."};
    bridge_options opt;
    app.add_option("--guest", opt.guest, "Where the guest attaches: shm://NAME (a process on this machine), ivshmem:///PATH "
                   "(QEMU's ivshmem-doorbell device: -chardev socket,path=PATH,id=kd -device "
                   "ivshmem-doorbell,chardev=kd,vectors=1) or ivshmem:///FILE?plain (QEMU's ivshmem-plain device "
                   "over a memory-backend-file at FILE)")->capture_default_str();
    app.add_option("--debugger", opt.debugger,
                   "Where the debugger attaches: any address (tcp-listen://, unix-listen:///PATH, serial://, "
                   "com:..., ...)")
        ->capture_default_str();
    app.add_option("--capture", opt.capture,
                   "Record every byte to and from the debugger in this pcapng file (kdcom-dump, kdcom-replay, "
                   "Wireshark with tools/wireshark/kdcom.lua read it)");
    app.add_flag("--force", opt.force, "Overwrite the capture file if it exists");
    return kdcom::tools::tool_main("kdcom-bridge", app, argc, argv, [&] { return run(opt); });
}
