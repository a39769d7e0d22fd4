// kdcom-proxy: a transparent man in the middle for a kernel debugger link. Forwards every byte
// unmodified between the debugger (which attaches where the proxy listens) and the target (which
// the proxy connects to), records both directions in a pcapng capture, and optionally prints the
// decoded packets as they pass.
//
//   kdcom-proxy --listen unix-listen:///tmp/dbg.sock --connect unix:///tmp/vm-serial.sock --capture s.pcapng
//
// Each side reconnects on its own: a debugger that goes away is replaced by the next one to attach;
// a target that goes away is connected to again, with backoff. While one side is away the other is
// not read (its bytes wait in the operating system, as on an unplugged cable).
#include <array>
#include <chrono>
#include <csignal>
#include <optional>

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <fmt/format.h>

#include "../common/address_option.hpp"
#include "../common/capture_option.hpp"
#include "../common/event_printer.hpp"
#include "../common/notice_log.hpp"
#include "../common/tool_error.hpp"
#include "../common/tool_main.hpp"
#include "kdcom/capture/capture_file.hpp"
#include "kdcom/net/open_link.hpp"

namespace {
using namespace kdcom;
using namespace std::chrono_literals;

struct proxy_options {
    std::string listen, connect, capture;
    std::string debugger_on = "listen";
    bool decode = false, json = false, force = false;
};

// What happens on the links, at a rate a peer cannot raise without bound.
tools::notice_log& notices() {
    static tools::notice_log log(stderr);
    return log;
}
void say(const std::string& text) { notices().print(text); }

// One end of the proxy: the link that produces its streams, the stream while one is open, and
// what has been read from it.
struct side {
    side(const char* n, capture::flow f) : name(n), outgoing(f) {}
    const char* name;        // "debugger" or "target"
    capture::flow outgoing;  // the direction of the bytes read from this side
    std::unique_ptr<net::link> link;
    std::unique_ptr<net::byte_stream> stream;
    unsigned generation = 0;  // which stream handlers belong to; a stale handler finds it changed
    bool reading = false;
    std::array<std::uint8_t, 64 * 1024> buffer{};
    std::optional<asio::steady_timer> retry;
    std::chrono::milliseconds backoff = 100ms;
    decode::decoder decoder;
    std::uint64_t bytes = 0, connections = 0;
};

class proxy {
public:
    proxy(asio::io_context& io, std::unique_ptr<net::link> debugger, std::unique_ptr<net::link> target,
          std::shared_ptr<capture::capture_file> recording, std::optional<tools::event_printer> printer)
        : recording_(std::move(recording)), printer_(std::move(printer)), started_(std::chrono::steady_clock::now()) {
        debugger_.link = std::move(debugger);
        target_.link = std::move(target);
        debugger_.retry.emplace(io);
        target_.retry.emplace(io);
    }

    void start() {
        open(debugger_);
        open(target_);
    }

    void stop() {
        stopped_ = true;
        for (side* s : {&debugger_, &target_}) {
            s->retry->cancel();
            if (s->stream) s->stream->close();
            s->link->close();
        }
    }

    void summary() {
        for (side* s : {&debugger_, &target_}) {
            s->decoder.finish();
            if (printer_) print_events(*s);
        }
        notices().print_always(fmt::format("kdcom-proxy: {} bytes debugger to target, {} bytes target to debugger; {} debugger and {} "
                        "target connections",
                        debugger_.bytes, target_.bytes, debugger_.connections, target_.connections));
        if (printer_) printer_->summary(debugger_.bytes + target_.bytes, "");
    }

private:
    side& other(side& s) { return &s == &debugger_ ? target_ : debugger_; }

    void open(side& s) {
        if (stopped_) return;
        s.link->async_open([this, &s](std::error_code ec, std::unique_ptr<net::byte_stream> stream) {
            if (stopped_ || ec == asio::error::operation_aborted) return;
            if (ec) {
                say(fmt::format("{} ({}): {}; trying again in {} ms", s.name, s.link->describe(), ec.message(),
                                s.backoff.count()));
                s.retry->expires_after(s.backoff);
                s.backoff = std::min<std::chrono::milliseconds>(s.backoff * 2, 5s);
                s.retry->async_wait([this, &s](std::error_code e) {
                    if (!e) open(s);
                });
                return;
            }
            s.stream = std::move(stream);
            ++s.generation;
            ++s.connections;
            s.backoff = 100ms;
            say(fmt::format("{} attached: {}", s.name, s.stream->describe()));
            forward(s);
            forward(other(s));
        });
    }

    // Reads from `from` and writes to the other side, one buffer at a time, while both are open.
    void forward(side& from) {
        side& to = other(from);
        if (!from.stream || !to.stream || from.reading) return;
        from.reading = true;
        from.stream->async_read_some(from.buffer, [this, &from, &to, g = from.generation](std::error_code ec, std::size_t n) {
            from.reading = false;
            if (g != from.generation) return;
            if (ec) return lost(from, ec);
            const std::span<const std::uint8_t> bytes(from.buffer.data(), n);
            from.bytes += n;
            if (recording_) recording_->write(capture::capture_file::now_ns(), from.outgoing, bytes);
            if (printer_) {
                from.decoder.push(bytes);
                print_events(from);
            }
            if (!to.stream) {  // the other side went while we read: these bytes are lost, as on a cut cable
                say(fmt::format("{} bytes from the {} not forwarded: the {} went away{}", n, from.name, to.name,
                                recording_ ? " (the capture has them)" : ""));
                return;
            }
            from.reading = true;     // the buffer is in use until the write completes
            to.stream->async_write(bytes, [this, &from, &to, gt = to.generation](std::error_code e, std::size_t) {
                from.reading = false;
                if (gt != to.generation) return;
                if (e) return lost(to, e);
                forward(from);
            });
        });
    }

    void lost(side& s, std::error_code ec) {
        if (stopped_ || !s.stream) return;
        say(fmt::format("{} went away: {}", s.name, ec == asio::error::eof ? "connection closed" : ec.message()));
        s.stream->close();
        s.stream.reset();
        ++s.generation;
        open(s);
    }

    void print_events(side& s) {
        tools::capture_context where;
        where.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
        where.direction = s.outgoing;
        printer_->drain(s.decoder, &where);
        std::fflush(stdout);
    }

    side debugger_{"debugger", capture::flow::debugger_to_target};
    side target_{"target", capture::flow::target_to_debugger};
    std::shared_ptr<capture::capture_file> recording_;
    std::optional<tools::event_printer> printer_;
    std::chrono::steady_clock::time_point started_;
    bool stopped_ = false;
};

int run(const proxy_options& opt) {
    auto listen_address = tools::parse_address_option(opt.listen, "--listen");
    auto connect_address = tools::parse_address_option(opt.connect, "--connect");
    if (tools::connects_only(listen_address))
        throw tools::tool_error("--listen needs an address to listen on (tcp-listen://, unix-listen://, pipe server), not '" +
                                opt.listen + "'");
    if (connect_address.listens())
        throw tools::tool_error("--connect needs an address to connect to, not the listening '" + opt.connect + "'");
    const bool debugger_listens = opt.debugger_on == "listen";
    auto& debugger_address = debugger_listens ? listen_address : connect_address;
    auto& target_address = debugger_listens ? connect_address : listen_address;

    asio::io_context io;
    // Listening before any socket file exists: a signal from then on is queued for the wait
    // below, so the proxy stops cleanly and removes its socket instead of dying with it there.
    asio::signal_set stop(io, SIGINT, SIGTERM);
    failure error;
    // Toward the debugger the proxy plays the target, and the other way round (a FIFO pair needs
    // to know which of its files to read).
    auto debugger_link = net::open_link(io.get_executor(), debugger_address, role::target, error, &debugger_address);
    if (!debugger_link) throw tools::tool_error(error.message());
    auto target_link = net::open_link(io.get_executor(), target_address, role::debugger, error, &target_address);
    if (!target_link) throw tools::tool_error(error.message());

    std::shared_ptr<capture::capture_file> recording;
    if (!opt.capture.empty()) {
        recording = tools::open_capture(opt.capture, {"kdcom-proxy", debugger_address.to_string(), target_address.to_string()},
                                    opt.force);
    }
    std::optional<tools::event_printer> printer;
    if (opt.decode || opt.json) printer.emplace("kdcom-proxy", opt.json);

    proxy p(io, std::move(debugger_link), std::move(target_link), recording, std::move(printer));
    notices().print_always(fmt::format("kdcom-proxy: debugger {}, target {}{}", debugger_address.to_string(), target_address.to_string(),
                    recording ? ", capture " + recording->path() : ""));
    p.start();
    stop.async_wait([&](std::error_code ec, int signal) {
        if (ec) return;
        notices().print_always(fmt::format("kdcom-proxy: {}, stopping", signal == SIGINT ? "interrupted" : "terminated"));
        p.stop();
    });
    io.run();
    p.summary();
    if (recording) notices().print_always(tools::finish_capture(*recording));
    return tools::exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Forward a kernel debugger link byte for byte between a debugger and a target, recording "
                 "both directions in a pcapng capture and printing the decoded packets if asked."};
    proxy_options opt;
    app.add_option("--listen", opt.listen, "Where the proxy waits (the debugger attaches here by default): "
                                           "tcp-listen://, unix-listen:///PATH, fifo:///BASE, serial://, ...")
        ->required();
    app.add_option("--connect", opt.connect, "What the proxy connects to (the target by default): tcp://, "
                                             "unix:///PATH, fifo:///BASE, serial://, ...")
        ->required();
    app.add_option("--capture", opt.capture, "Record both directions in this pcapng file");
    app.add_flag("--force", opt.force, "Overwrite the capture file if it exists");
    app.add_option("--debugger-on", opt.debugger_on, "Which side the debugger is on: listen or connect")
        ->check(CLI::IsMember({"listen", "connect"}))
        ->capture_default_str();
    app.add_flag("--decode", opt.decode, "Print each packet as it passes (as kdcom-dump prints a capture)");
    app.add_flag("--json", opt.json, "Print each packet as a JSON object (as kdcom-dump --json)");
    return kdcom::tools::tool_main("kdcom-proxy", app, argc, argv, [&] { return run(opt); });
}
