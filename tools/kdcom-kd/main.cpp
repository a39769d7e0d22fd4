// kdcom-kd: a console kernel debugger for Windows targets, from Linux, over any address kdcom
// speaks (a VM's serial port as a Unix socket or TCP, a real serial line, a named pipe, a bridge).
// WinDbg's command names; scriptable with -c and --json.
//
//   kdcom-kd ADDRESS [-c "CMD; CMD; ..."] [--json] [--timeout S] [--no-break]
//
// With -c it runs the commands and exits; otherwise it reads commands at a prompt (a terminal: with
// history and line editing, Ctrl+C breaks in) or from standard input. Exit status: 0 all commands
// succeeded, 1 a command failed on the target, 2 unusable input or the target unreachable or lost.
#include <algorithm>
#include <cerrno>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <editline/readline.h>
#include <fmt/core.h>

#include "../common/address_option.hpp"
#include "../common/stop_signals.hpp"
#include "../common/terminal_text.hpp"
#include "../common/tool_error.hpp"
#include "../common/tool_main.hpp"
#include "console.hpp"
#include "kdcom/net/kd_client.hpp"
#include "kdcom/net/open_link.hpp"

namespace {
using namespace kdcom;
using namespace std::chrono_literals;
using kdcom::tools::kd_console::console;
using json = nlohmann::ordered_json;

struct kd_options {
    std::string address;
    std::string commands;
    bool json = false;
    double timeout_seconds = 20;
    bool no_break = false;
};

// Reads command lines from a terminal (with history and editing) or from a stream.
class line_source {
public:
    line_source() : terminal_(::isatty(STDIN_FILENO) == 1) {}
    bool terminal() const noexcept { return terminal_; }

    bool next(std::string& line) {
        if (!terminal_) return static_cast<bool>(std::getline(std::cin, line));
        char* raw = nullptr;
        for (;;) {
            errno = 0;
            raw = ::readline("kd> ");
            // Ctrl+C (SIGINT, which breaks in) interrupts the line being edited: start a new one.
            if (raw || errno != EINTR) break;
            std::fputs("\n", stdout);
        }
        if (!raw) return false;
        line = raw;
        std::free(raw);
        if (!line.empty()) ::add_history(line.c_str());
        return true;
    }

private:
    bool terminal_;
};

int run(const kd_options& opt) {
    const auto address = tools::parse_address_option(opt.address, "target");
    if (opt.timeout_seconds <= 0 || opt.timeout_seconds > 86400) throw tools::tool_error("--timeout must be 0 to 86400 seconds");
    const auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(opt.timeout_seconds * 1000));
    const auto commands = console::split_commands(opt.commands);
    const bool scripted = !opt.commands.empty();

    asio::io_context io;
    auto work = asio::make_work_guard(io);
    line_source lines;
    const bool prompting = !scripted && lines.terminal();
    // SIGTERM (and SIGINT but at the prompt) closes the session: the command in progress, and
    // every one after it, fails, and kdcom-kd says why and exits. Listening before any socket
    // file exists.
    tools::stop_signals signals(io, !prompting);
    failure error;
    auto link = net::open_link(io.get_executor(), address, role::debugger, error);
    if (!link) throw tools::tool_error(error.message());
    tools::kd_console::output out(opt.json);

    // A lost target ends the session (and so every command) unless the address asks to reconnect.
    net::session_options session_options;
    session_options.reconnect = address.reconnect;
    auto session = net::session::create(std::move(link), net::config_for(address, {.role = role::debugger}), session_options);
    std::atomic<bool> connected{false}, closed{false};
    kd::client_handlers handlers;
    handlers.print = [&](std::string_view text) {
        out.emit(tools::printable(text, tools::line_breaks::keep), json{{"event", "print"}, {"text", text}});
    };
    handlers.state_change = [&](const kd::stop_report& stop) {
        const auto text = console::describe_stop(stop);
        out.emit(text, json{{"event", "stop"}, {"text", text}, {"pc", fmt::format("0x{:x}", stop.header.program_counter)}});
    };
    handlers.notice = [&](const net::session_notice& n) {
        using what = net::session_notice::what;
        if (n.kind == what::stream_opened) {
            connected = true;
            if (!scripted && !opt.json) out.complain(fmt::format("kdcom-kd: connected to {}", n.text));
        } else if (n.kind == what::link_failed) {
            out.complain(fmt::format("kdcom-kd: {}", n.text));
        } else if (n.kind == what::stream_closed) {
            connected = false;
            out.complain(fmt::format("kdcom-kd: the target's connection ended: {}", n.text));
        } else if (n.kind == what::closed) {
            closed = true;
        }
    };
    auto client = kd::client::create(session, {}, std::move(handlers));
    asio::post(io, [&] { client->start(); });

    // At the prompt, Ctrl+C breaks in as in WinDbg; a script is interrupted as any program is.
    asio::signal_set interrupt(io);
    std::function<void()> listen_for_interrupt = [&] {
        interrupt.async_wait([&](std::error_code ec, int) {
            if (ec) return;
            client->async_break_in([](std::error_code, kd::stop_report) {});
            listen_for_interrupt();
        });
    };
    if (prompting) {
        interrupt.add(SIGINT);
        listen_for_interrupt();
    }
    signals.on_stop([&] { client->close(); });
    std::thread io_thread([&] { io.run(); });
    auto finish = [&](int status) {
        asio::post(io, [&] {
            interrupt.cancel();
            signals.cancel();
            client->close();
        });
        work.reset();
        io_thread.join();
        return status;
    };

    // The target first: connected (a listening address waits for it), then stopped.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!connected && !closed && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    if (!connected) {
        out.complain(signals.signal() ? "kdcom-kd: " + signals.describe()
                     : closed      ? fmt::format("kdcom-kd: cannot reach the target at {}", address.to_string())
                            : fmt::format("kdcom-kd: no target connected at {} within {} s", address.to_string(),
                                          opt.timeout_seconds));
        return finish(tools::exit_usage);
    }
    console debugger(*client, out, timeout);
    int worst = debugger.attach(!opt.no_break);
    if (worst == tools::kd_console::status_unusable) return finish(worst);

    if (scripted) {
        for (const auto& command : commands) {
            const int status = debugger.run(command);
            worst = std::max(worst, status);
            if (status == tools::kd_console::status_unusable || debugger.quitting()) break;
        }
        if (signals.signal()) out.complain("kdcom-kd: " + signals.describe());
        return finish(worst);
    }
    std::string line;
    while (!debugger.quitting() && lines.next(line)) {
        for (const auto& command : console::split_commands(line)) {
            worst = std::max(worst, debugger.run(command));
            if (debugger.quitting()) break;
        }
    }
    if (signals.signal()) out.complain("kdcom-kd: " + signals.describe());
    return finish(worst);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"A console kernel debugger for Windows targets over KDCOM, with WinDbg's command names: a VM's "
                 "serial port (unix://, tcp://), a serial line (serial://), a named pipe (pipe:, com:), a kdcom "
                 "bridge. Run it and type ? for the commands."};
    kd_options opt;
    app.add_option("address", opt.address,
                   "Where the target is: tcp://HOST:PORT, tcp-listen://[ADDR]:PORT, unix:///PATH, unix-listen:///PATH, "
                   "fifo:///BASE, serial:///dev/ttyS0?baud=115200, pipe:\\\\.\\pipe\\NAME, com:port=...,  with "
                   "?resets=0 and ?reconnect as options")
        ->required();
    app.add_option("-c", opt.commands, "Run these commands (separated by ';') and exit");
    app.add_flag("--json", opt.json, "Print one JSON object per command result and per target event");
    app.add_option("--timeout", opt.timeout_seconds,
                   "Seconds to wait for the target to connect and stop, and for wait, t and p")
        ->capture_default_str();
    app.add_flag("--no-break", opt.no_break, "Attach without breaking in (a running target stays running)");
    app.footer(console::help() + "\nExit status: 0 every command succeeded, 1 a command failed on the target, 2 unusable "
                                 "input or the target unreachable or lost.");
    return kdcom::tools::tool_main("kdcom-kd", app, argc, argv, [&] { return run(opt); });
}
