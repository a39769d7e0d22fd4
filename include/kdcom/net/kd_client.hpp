// kdcom::kd::client: the debugger's side of KD over a net::session, as WinDbg or kd is to the
// kernel. It sends one manipulate request at a time and matches the reply by ApiNumber (and by
// what the request acts on: address and count, port, MSR); resynchronises and sends again when a
// reply does not come (kd::request_exchange); splits memory transfers of any length into the
// largest a packet carries; delivers DbgPrint text, state changes and link notices to handlers
// meanwhile; answers the target's file and prompt requests so it never waits on us.
//
//     asio::io_context io;
//     auto s = net::session::create(std::move(link), {.role = role::debugger});
//     auto c = kd::client::create(s, {}, {.print = [](std::string_view t) { ... }});
//     c->start();                                   // starts the session too
//     c->async_break_in([](std::error_code ec, kd::stop_report stop) { ... });
//     c->async_read_memory(kd::memory_space::physical, 0x1000, 4096, [](auto ec, auto bytes) { ... });
//     // or, from a thread other than the io_context's, blocking:
//     std::error_code ec;
//     auto version = c->get_version(ec);
//
// Operations take any Asio completion token (callbacks, use_future, use_awaitable). They queue and
// run one after another, in order. Those that act on the target's state (every manipulate request)
// need it stopped: while it runs they fail with client_errc::target_running, sending nothing. A
// target's refusal is its NTSTATUS as an error in ntstatus_category(). No operation waits for
// ever: a request fails after options.exchange's attempts; a break-in after its presses; waiting for
// a state change ends with close() (or the blocking form's timeout).
//
// Threads: the client runs on the session's executor; its members may be called from any thread
// (they post there), except the blocking forms, which must not be called on that executor's
// thread (they fail with resource_deadlock_would_occur there). Handlers run on the session's
// executor (or their own associated executor), never inside the call that started them.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <asio/async_result.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "kdcom/kd/client_errors.hpp"
#include "kdcom/kd/context_amd64.hpp"
#include "kdcom/kd/debug_io.hpp"
#include "kdcom/kd/file_io.hpp"
#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/request_exchange.hpp"
#include "kdcom/kd/state_change.hpp"
#include "kdcom/kd/status.hpp"
#include "kdcom/net/detail/erased_handler.hpp"
#include "kdcom/net/session.hpp"

namespace kdcom::kd {

enum class memory_space : std::uint8_t { virtual_memory, physical_memory };

// A manipulate reply: its header, decoded, and the whole packet body it came in.
struct reply {
    manipulate_header header;
    std::vector<std::uint8_t> body;
    // The message data after the header (the bytes read, a CONTEXT record).
    std::span<const std::uint8_t> data() const noexcept {
        return std::span(body).subspan(std::min(body.size(), manipulate_header_size));
    }
};

// A state change: why the target stopped (or what it loaded), and its data (an image's path).
struct stop_report {
    state_change_header header;
    std::vector<std::uint8_t> data;
};

struct client_handlers {
    std::function<void(std::string_view text)> print;        // DbgPrint output
    std::function<void(const stop_report&)> state_change;    // the target stopped
    std::function<void(const net::session_notice&)> notice;  // the link: connected, lost, reset
    // DbgPrompt: the line to answer the prompt with (none: an empty line).
    std::function<std::string(std::string_view prompt)> prompt;
    // A .kdfiles request (KD_FILE_IO: the target asks for a replacement driver file; `name` is the
    // message data, the file's name in UTF-16LE). Told, then answered STATUS_NO_SUCH_FILE: this
    // client serves no files.
    std::function<void(const file_io_header&, std::span<const std::uint8_t> name)> file_request;
};

struct client_options {
    request_exchange_config exchange;  // reply timeout and resynchronisations per request
    // The most one request moves: what a 4000-byte packet carries after its header.
    std::uint32_t max_transfer = wire::default_max_body - manipulate_header_size;
    timestamp breakin_interval = std::chrono::seconds(1);  // a break-in is one unacknowledged byte:
    unsigned breakin_presses = 10;                          // press again while the target runs on
};

class client : public std::enable_shared_from_this<client> {
private:
    // Starts an operation with any completion token: `start(client&, done)` runs on the session's
    // executor (posted: never inside the caller's call), `done(args...)` hands the result to the
    // caller's handler on its executor.
    template <class Signature, class Token, class Start>
    auto initiate(Token&& token, Start start) {
        return asio::async_initiate<Token, Signature>(
            [self = shared_from_this()](auto handler, Start s) {
                auto h = std::make_shared<net::detail::erased_handler<Signature>>(std::move(handler), self->executor_);
                asio::post(self->executor_, [self, h, s = std::move(s)]() mutable {
                    s(*self, [h](auto&&... args) { h->complete(true, std::forward<decltype(args)>(args)...); });
                });
            },
            token, std::move(start));
    }

    // A request whose reply's status decides: success gives `take(reply)`, failure the status.
    template <class Result, class Token, class Take>
    auto simple(const manipulate_header& h, std::span<const std::uint8_t> data, Token&& token, Take take) {
        return initiate<void(std::error_code, Result)>(
            std::forward<Token>(token), [h, body = encode(h, data), take](client& c, auto done) mutable {
                c.submit(std::move(body), h, true, [done, take](std::error_code ec, reply r) mutable {
                    if (!ec && failed(r.header.return_status)) ec = ntstatus_error(r.header.return_status);
                    if (ec) return done(ec, Result{});
                    done(ec, take(r));
                });
            });
    }
    template <class Result, class Token, class Take>
    auto simple(std::uint32_t api, std::span<const std::uint8_t> data, Token&& token, Take take) {
        manipulate_header h;
        h.api = api;
        return simple<Result>(h, data, std::forward<Token>(token), std::move(take));
    }

    // A request that is not answered (Continue, Reboot): done once the target has it; the target
    // runs from then on.
    template <class Token>
    auto without_reply(const manipulate_header& h, Token&& token) {
        return initiate<void(std::error_code, bool)>(
            std::forward<Token>(token), [h, body = encode(h, {})](client& c, auto done) mutable {
                c.submit(std::move(body), h, false, [done](std::error_code ec, reply) mutable { done(ec, !ec); });
            });
    }

    // A blocking form: starts the operation with a callback and waits for it.
    template <class Result, class Start>
    Result wait(std::error_code& ec, Start start) {
        if (net::detail::runs_in_this_thread(executor_)) {
            ec = std::make_error_code(std::errc::resource_deadlock_would_occur);
            return {};
        }
        std::promise<std::pair<std::error_code, Result>> result;
        auto future = result.get_future();
        start([&result](std::error_code e, auto value) { result.set_value({e, Result(std::move(value))}); });
        auto [e, value] = future.get();
        ec = e;
        return std::move(value);
    }

    // Completes when the target is stopped; `tag` (nonzero) lets a blocking wait withdraw itself.
    template <class Token>
    auto wait_for_stop(std::uint64_t tag, Token&& token) {
        return initiate<void(std::error_code, stop_report)>(std::forward<Token>(token), [tag](client& c, auto done) {
            if (c.closed_) return done(net::session_errc::closed, stop_report{});
            if (c.stopped_) return done(std::error_code{}, stop_report(c.last_stop_));
            c.stop_waiters_.push_back({tag, std::move(done)});
        });
    }

public:
    // Each piece of a memory read, in order, as it arrives: its offset from the start and bytes.
    using chunk_sink = std::function<void(std::uint64_t offset, std::span<const std::uint8_t> bytes)>;

    static std::shared_ptr<client> create(std::shared_ptr<net::session> session, const client_options& options = {},
                                          client_handlers handlers = {}) {
        return std::shared_ptr<client>(new client(std::move(session), options, std::move(handlers)));
    }

    // Takes the session's notices and packets, and starts it. Call once.
    void start() {
        std::weak_ptr<client> weak = shared_from_this();
        session_->set_notice_handler([weak](const net::session_notice& n) {
            if (auto self = weak.lock()) self->on_notice(n);
        });
        receive_next();
        session_->start();
    }

    // Closes the session; every operation still pending completes with session_errc::closed.
    void close() {
        asio::post(executor_, [self = shared_from_this()] {
            self->fail_everything(net::session_errc::closed);
            self->session_->close();
        });
    }

    asio::any_io_executor get_executor() const { return executor_; }
    const std::shared_ptr<net::session>& session() const { return session_; }
    // Replies that answered nothing asked (a request executed twice, a late answer): dropped.
    std::uint64_t stray_replies() const noexcept { return stray_replies_; }
    // Answers to the target's prompt and file requests dropped because too many were outstanding.
    std::uint64_t answers_dropped() const noexcept { return answers_dropped_; }
    unsigned resyncs() const noexcept { return exchange_.resyncs_done(); }
    // Break-in bytes sent by async_break_in (a press repeated while the target ran on counts again).
    // Any thread.
    unsigned breakin_presses() const noexcept { return breakin_presses_.load(std::memory_order_relaxed); }

    // ---- Operations --------------------------------------------------------------------------

    // Any manipulate request: `h` (its API and fields) and `data` (copied). Completes with the
    // reply, whatever its status: the caller judges it.
    template <class Token>
    auto async_request(const manipulate_header& h, std::span<const std::uint8_t> data, Token&& token) {
        return initiate<void(std::error_code, reply)>(
            std::forward<Token>(token), [h, body = encode(h, data)](client& c, auto done) mutable {
                c.submit(std::move(body), h, true, [done](std::error_code ec, reply r) mutable {
                    done(ec, std::move(r));
                });
            });
    }

    template <class Token>
    auto async_get_version(Token&& token) {
        return simple<version_info>(manipulate_api::get_version, {}, std::forward<Token>(token),
                                    [](const reply& r) { return r.header.version; });
    }

    // Reads `size` bytes in requests of at most options.max_transfer, each handed to `sink` as it
    // arrives. Completes with the bytes read; short of `size` with client_errc::short_transfer
    // (or the target's status) when the target read fewer.
    template <class Token>
    auto async_read_memory(memory_space space, std::uint64_t address, std::uint64_t size, chunk_sink sink, Token&& token) {
        return initiate<void(std::error_code, std::uint64_t)>(
            std::forward<Token>(token), [=, sink = std::move(sink)](client& c, auto done) mutable {
                c.transfer_in_pieces(std::make_shared<transfer>(
                    transfer{read_api(space), address, size, 0, {}, std::move(sink), std::move(done)}));
            });
    }
    // The same, collected: completes with the bytes read (all of them, or those before a failure).
    template <class Token>
    auto async_read_memory(memory_space space, std::uint64_t address, std::uint64_t size, Token&& token) {
        return initiate<void(std::error_code, std::vector<std::uint8_t>)>(
            std::forward<Token>(token), [=](client& c, auto done) mutable {
                auto bytes = std::make_shared<std::vector<std::uint8_t>>();
                c.transfer_in_pieces(std::make_shared<transfer>(transfer{
                    read_api(space), address, size, 0, {},
                    [bytes](std::uint64_t, std::span<const std::uint8_t> piece) {
                        bytes->insert(bytes->end(), piece.begin(), piece.end());
                    },
                    [bytes, done](std::error_code ec, std::uint64_t) mutable { done(ec, std::move(*bytes)); }}));
            });
    }

    // Writes `data` (copied) in pieces; completes with the bytes written.
    template <class Token>
    auto async_write_memory(memory_space space, std::uint64_t address, std::span<const std::uint8_t> data, Token&& token) {
        return initiate<void(std::error_code, std::uint64_t)>(
            std::forward<Token>(token),
            [=, bytes = std::vector<std::uint8_t>(data.begin(), data.end())](client& c, auto done) mutable {
                const std::uint64_t size = bytes.size();
                c.transfer_in_pieces(std::make_shared<transfer>(
                    transfer{write_api(space), address, size, 0, std::move(bytes), {}, std::move(done)}));
            });
    }

    // Control space of `processor`: on AMD64 address 0 is its KPCR, 1 its KPRCB, 2 its special
    // registers, 3 its current thread (ReactOS KdpSysReadControlSpace).
    template <class Token>
    auto async_read_control_space(std::uint16_t processor, std::uint64_t address, std::uint32_t size, Token&& token) {
        manipulate_header h;
        h.api = manipulate_api::read_control_space;
        h.processor = processor;
        h.memory = {address, size, 0};
        return simple<std::vector<std::uint8_t>>(h, {}, std::forward<Token>(token), [](const reply& r) {
            const auto data = r.data();
            return std::vector<std::uint8_t>(data.begin(), data.begin() + std::min<std::size_t>(data.size(), r.header.memory.actual_bytes));
        });
    }
    template <class Token>
    auto async_write_control_space(std::uint16_t processor, std::uint64_t address, std::span<const std::uint8_t> data,
                                   Token&& token) {
        manipulate_header h;
        h.api = manipulate_api::write_control_space;
        h.processor = processor;
        h.memory = {address, static_cast<std::uint32_t>(data.size()), 0};
        return simple<std::uint32_t>(h, data, std::forward<Token>(token),
                                     [](const reply& r) { return r.header.memory.actual_bytes; });
    }

    // The current processor's registers (AMD64 CONTEXT, every part: context_flags::all).
    template <class Token>
    auto async_get_context(Token&& token) {
        manipulate_header h;
        h.api = manipulate_api::get_context;
        h.context_flags = amd64::context_flags::all;
        return simple<context_amd64>(h, {}, std::forward<Token>(token), [](const reply& r) { return context_amd64(r.data()); });
    }
    template <class Token>
    auto async_set_context(const context_amd64& context, Token&& token) {
        manipulate_header h;
        h.api = manipulate_api::set_context;
        h.context_flags = context.flags() ? context.flags() : amd64::context_flags::all;
        return simple<std::uint32_t>(h, context.bytes(), std::forward<Token>(token), [](const reply&) { return 0u; });
    }

    template <class Token>
    auto async_read_msr(std::uint32_t msr, Token&& token) {
        manipulate_header h;
        h.api = manipulate_api::read_msr;
        h.msr.msr = msr;
        return simple<std::uint64_t>(h, {}, std::forward<Token>(token), [](const reply& r) { return r.header.msr.value; });
    }
    template <class Token>
    auto async_write_msr(std::uint32_t msr, std::uint64_t value, Token&& token) {
        manipulate_header h;
        h.api = manipulate_api::write_msr;
        h.msr = {msr, value};
        return simple<std::uint64_t>(h, {}, std::forward<Token>(token), [value](const reply&) { return value; });
    }

    // I/O ports: `size` is 1, 2 or 4 bytes.
    template <class Token>
    auto async_read_io(std::uint64_t io_port, std::uint32_t size, Token&& token) {
        manipulate_header h;
        h.api = manipulate_api::read_io_space;
        h.io = {io_port, size, 0};
        return simple<std::uint32_t>(h, {}, std::forward<Token>(token), [](const reply& r) { return r.header.io.value; });
    }
    template <class Token>
    auto async_write_io(std::uint64_t io_port, std::uint32_t size, std::uint32_t value, Token&& token) {
        manipulate_header h;
        h.api = manipulate_api::write_io_space;
        h.io = {io_port, size, value};
        return simple<std::uint32_t>(h, {}, std::forward<Token>(token), [value](const reply&) { return value; });
    }

    // A software breakpoint at a virtual address; completes with the target's handle for it.
    template <class Token>
    auto async_write_breakpoint(std::uint64_t address, Token&& token) {
        manipulate_header h;
        h.api = manipulate_api::write_breakpoint;
        h.breakpoint.address = address;
        return simple<std::uint32_t>(h, {}, std::forward<Token>(token),
                                     [](const reply& r) { return r.header.breakpoint.handle; });
    }
    template <class Token>
    auto async_restore_breakpoint(std::uint32_t handle, Token&& token) {
        manipulate_header h;
        h.api = manipulate_api::restore_breakpoint;
        h.breakpoint.handle = handle;
        return simple<std::uint32_t>(h, {}, std::forward<Token>(token), [handle](const reply&) { return handle; });
    }

    // Continue2: resume with `continue_status` (status::dbg_continue, ...), one instruction only
    // with `trace` (the target then stops with STATUS_SINGLE_STEP). Completes once the target has
    // it (acknowledged, or assumed after the reply timeout: a running target reads nothing).
    template <class Token>
    auto async_continue(std::uint32_t continue_status, bool trace, Token&& token) {
        manipulate_header h;
        h.api = manipulate_api::continue2;
        h.continuation.status = continue_status;
        h.continuation.trace_flag = trace ? 1 : 0;
        return without_reply(h, std::forward<Token>(token));
    }
    template <class Token>
    auto async_reboot(Token&& token) {
        manipulate_header h;
        h.api = manipulate_api::reboot;
        return without_reply(h, std::forward<Token>(token));
    }

    // Completes when the target is stopped: with the state change that stopped it, at once if it
    // is stopped already (say, a Continue with trace whose stop came before this was called).
    template <class Token>
    auto async_wait_state_change(Token&& token) {
        return wait_for_stop(0, std::forward<Token>(token));
    }
    // Breaks in ('b', pressed again every breakin_interval) and completes with the stop; at once
    // if the target is stopped already (with the last stop it reported).
    template <class Token>
    auto async_break_in(Token&& token) {
        return initiate<void(std::error_code, stop_report)>(std::forward<Token>(token), [](client& c, auto done) {
            if (c.closed_) return done(net::session_errc::closed, stop_report{});
            if (c.stopped_) return done(std::error_code{}, stop_report(c.last_stop_));
            c.stop_waiters_.push_back({0, std::move(done)});
            const bool pressing = c.breakins_left_ > 0;
            c.breakins_left_ = c.options_.breakin_presses;
            if (!pressing) c.press_breakin();
        });
    }
    // One break-in byte, nothing awaited.
    void send_breakin() {
        asio::post(executor_, [self = shared_from_this()] { self->session_->send_breakin(); });
    }
    // A new reset handshake (a Windows-style target reports its stop again after it).
    void resynchronise() {
        asio::post(executor_, [self = shared_from_this()] { self->session_->start_reset(); });
    }
    // The endpoint's figures (packets, retransmissions, resets...), from any thread: read on the
    // session's executor, waited for when called from elsewhere.
    endpoint_stats stats() const {
        if (net::detail::runs_in_this_thread(executor_)) return session_->protocol().stats();
        std::promise<endpoint_stats> figures;
        asio::post(executor_, [this, &figures] { figures.set_value(session_->protocol().stats()); });
        return figures.get_future().get();
    }

    // ---- Blocking forms (not on the session's thread) -----------------------------------------

    version_info get_version(std::error_code& ec) { return wait<version_info>(ec, [&](auto t) { async_get_version(t); }); }
    std::vector<std::uint8_t> read_memory(memory_space space, std::uint64_t address, std::uint64_t size, std::error_code& ec) {
        return wait<std::vector<std::uint8_t>>(ec, [&](auto t) { async_read_memory(space, address, size, t); });
    }
    std::uint64_t read_memory(memory_space space, std::uint64_t address, std::uint64_t size, chunk_sink sink,
                              std::error_code& ec) {
        return wait<std::uint64_t>(ec, [&](auto t) { async_read_memory(space, address, size, std::move(sink), t); });
    }
    std::uint64_t write_memory(memory_space space, std::uint64_t address, std::span<const std::uint8_t> data,
                               std::error_code& ec) {
        return wait<std::uint64_t>(ec, [&](auto t) { async_write_memory(space, address, data, t); });
    }
    std::vector<std::uint8_t> read_control_space(std::uint16_t processor, std::uint64_t address, std::uint32_t size,
                                                 std::error_code& ec) {
        return wait<std::vector<std::uint8_t>>(ec, [&](auto t) { async_read_control_space(processor, address, size, t); });
    }
    std::uint32_t write_control_space(std::uint16_t processor, std::uint64_t address, std::span<const std::uint8_t> data,
                                      std::error_code& ec) {
        return wait<std::uint32_t>(ec, [&](auto t) { async_write_control_space(processor, address, data, t); });
    }
    context_amd64 get_context(std::error_code& ec) { return wait<context_amd64>(ec, [&](auto t) { async_get_context(t); }); }
    void set_context(const context_amd64& context, std::error_code& ec) {
        wait<std::uint32_t>(ec, [&](auto t) { async_set_context(context, t); });
    }
    std::uint64_t read_msr(std::uint32_t msr, std::error_code& ec) {
        return wait<std::uint64_t>(ec, [&](auto t) { async_read_msr(msr, t); });
    }
    void write_msr(std::uint32_t msr, std::uint64_t value, std::error_code& ec) {
        wait<std::uint64_t>(ec, [&](auto t) { async_write_msr(msr, value, t); });
    }
    std::uint32_t read_io(std::uint64_t io_port, std::uint32_t size, std::error_code& ec) {
        return wait<std::uint32_t>(ec, [&](auto t) { async_read_io(io_port, size, t); });
    }
    void write_io(std::uint64_t io_port, std::uint32_t size, std::uint32_t value, std::error_code& ec) {
        wait<std::uint32_t>(ec, [&](auto t) { async_write_io(io_port, size, value, t); });
    }
    std::uint32_t write_breakpoint(std::uint64_t address, std::error_code& ec) {
        return wait<std::uint32_t>(ec, [&](auto t) { async_write_breakpoint(address, t); });
    }
    void restore_breakpoint(std::uint32_t handle, std::error_code& ec) {
        wait<std::uint32_t>(ec, [&](auto t) { async_restore_breakpoint(handle, t); });
    }
    void continue_running(std::uint32_t continue_status, bool trace, std::error_code& ec) {
        wait<bool>(ec, [&](auto t) { async_continue(continue_status, trace, t); });
    }
    void reboot(std::error_code& ec) {
        wait<bool>(ec, [&](auto t) { async_reboot(t); });
    }
    stop_report break_in(std::error_code& ec) { return wait<stop_report>(ec, [&](auto t) { async_break_in(t); }); }
    // The stop (see async_wait_state_change), or session_errc::timed_out after `timeout`.
    stop_report wait_state_change(std::chrono::milliseconds timeout, std::error_code& ec) {
        if (net::detail::runs_in_this_thread(executor_)) {
            ec = std::make_error_code(std::errc::resource_deadlock_would_occur);
            return {};
        }
        auto result = std::make_shared<std::promise<std::pair<std::error_code, stop_report>>>();
        auto future = result->get_future();
        const auto tag = ++last_wait_tag_;
        wait_for_stop(tag, [result](std::error_code e, stop_report s) { result->set_value({e, std::move(s)}); });
        if (future.wait_for(timeout) != std::future_status::ready) {
            asio::post(executor_, [self = shared_from_this(), tag] {
                // Withdraw this wait (unless the stop came meanwhile), not another caller's.
                auto& w = self->stop_waiters_;
                const auto it = std::find_if(w.begin(), w.end(), [tag](const stop_waiter& x) { return x.tag == tag; });
                if (it == w.end()) return;
                auto done = std::move(it->done);
                w.erase(it);
                done(net::session_errc::timed_out, stop_report{});
            });
        }
        auto [e, s] = future.get();
        ec = e;
        return s;
    }

    // On the session's executor only: whether the target is stopped (it reported a stop that no
    // continue has ended).
    bool stopped() const noexcept { return stopped_; }
    const stop_report& last_stop() const noexcept { return last_stop_; }

private:
    using completion = std::function<void(std::error_code, reply)>;

    struct operation {
        std::vector<std::uint8_t> body;
        manipulate_header header;
        bool reply_expected = true;
        completion done;
    };

    // The request_port the exchange drives: the session, with sends tracked by generation so that
    // the completion of one cancelled or replaced is not taken for the current one's.
    struct session_port {
        client& c;
        std::error_code send(wire::packet_type type, std::span<const std::uint8_t> header,
                             std::span<const std::uint8_t> data, timestamp) {
            c.send_in_flight_ = true;
            const auto generation = ++c.send_generation_;
            c.session_->async_send(type, header, data, [self = c.shared_from_this(), generation](std::error_code ec) {
                self->on_sent(generation, ec);
            });
            return {};
        }
        bool send_in_progress() const { return c.send_in_flight_; }
        void cancel_send(timestamp) {
            c.send_in_flight_ = false;
            ++c.send_generation_;
            c.session_->cancel_send();
        }
        void start_reset(timestamp) { c.session_->start_reset(); }
        const endpoint_config& config() const { return c.session_->protocol().config(); }
    };
    static_assert(request_port<session_port>);

    client(std::shared_ptr<net::session> s, const client_options& options, client_handlers handlers)
        : session_(std::move(s)),
          executor_(session_->get_executor()),
          options_(options),
          handlers_(std::move(handlers)),
          exchange_(options.exchange),
          timer_(executor_) {}

    static timestamp now() { return std::chrono::steady_clock::now().time_since_epoch(); }

    static std::vector<std::uint8_t> encode(const manipulate_header& h, std::span<const std::uint8_t> data) {
        std::vector<std::uint8_t> body(manipulate_header_size + data.size());
        encode_manipulate(h, body);
        std::copy(data.begin(), data.end(), body.begin() + manipulate_header_size);
        return body;
    }

    static std::uint32_t read_api(memory_space s) {
        return s == memory_space::virtual_memory ? manipulate_api::read_virtual_memory : manipulate_api::read_physical_memory;
    }
    static std::uint32_t write_api(memory_space s) {
        return s == memory_space::virtual_memory ? manipulate_api::write_virtual_memory
                                                 : manipulate_api::write_physical_memory;
    }

    // ---- Requests, one at a time ---------------------------------------------------------------

    void submit(std::vector<std::uint8_t> body, const manipulate_header& h, bool reply_expected, completion done) {
        if (closed_) return done(net::session_errc::closed, {});
        queue_.push_back({std::move(body), h, reply_expected, std::move(done)});
        start_next();
    }

    void start_next() {
        while (!in_flight_ && !queue_.empty()) {
            if (!stopped_) {
                finish_front(client_errc::target_running, {});
                continue;
            }
            in_flight_ = true;
            session_port p{*this};
            const auto& op = queue_.front();
            if (const auto ec = exchange_.start(p, op.body, op.reply_expected, now())) {
                finish_front(ec, {});
                continue;
            }
            arm_timer();
        }
    }

    void finish_front(std::error_code ec, reply r) {
        auto op = std::move(queue_.front());
        queue_.pop_front();
        in_flight_ = false;
        if (!ec && !op.reply_expected) stopped_ = false;  // Continue, Reboot: it runs now
        op.done(ec, std::move(r));
        start_next();
    }

    void on_sent(std::uint64_t generation, std::error_code ec) {
        if (generation != send_generation_) return;  // cancelled, or an earlier request's
        send_in_flight_ = false;
        if (ec == net::session_errc::closed) return fail_everything(ec);
        if (ec || !in_flight_) return;  // the exchange's timer decides what happens next
        exchange_.acknowledged();
        if (exchange_.current() == request_exchange::state::answered) finish_front({}, {});
    }

    void on_timer() {
        const auto t = now();
        if (in_flight_) {
            if (const auto d = exchange_.deadline(); d && *d <= t) {
                session_port p{*this};
                exchange_.on_time(p, t);
                if (exchange_.current() == request_exchange::state::failed) finish_front(client_errc::no_reply, {});
                else if (exchange_.current() == request_exchange::state::answered) finish_front({}, {});
            }
        }
        if (breakins_left_ > 0 && !stopped_ && t >= next_breakin_) {
            if (--breakins_left_ == 0) {
                fail_stop_waiters(client_errc::no_reply);
            } else {
                press_breakin();
            }
        }
        arm_timer();
    }

    void press_breakin() {
        breakin_presses_.fetch_add(1, std::memory_order_relaxed);
        session_->send_breakin();
        next_breakin_ = now() + options_.breakin_interval;
        arm_timer();
    }

    void arm_timer() {
        std::optional<timestamp> due = in_flight_ ? exchange_.deadline() : std::nullopt;
        if (breakins_left_ > 0 && (!due || next_breakin_ < *due)) due = next_breakin_;
        if (!due) return;
        if (timer_armed_ && timer_due_ <= *due) return;
        timer_armed_ = true;
        timer_due_ = *due;
        timer_.expires_at(std::chrono::steady_clock::time_point(
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(*due)));
        timer_.async_wait([self = shared_from_this()](std::error_code ec) {
            if (ec) return;
            self->timer_armed_ = false;
            self->on_timer();
        });
    }

    // ---- What the target sends -------------------------------------------------------------------

    void receive_next() {
        session_->async_receive([self = shared_from_this()](std::error_code ec, net::received_packet p) {
            if (ec) return self->fail_everything(ec);
            self->on_packet(std::move(p));
            self->receive_next();
        });
    }

    void on_packet(net::received_packet p) {
        using wire::packet_type;
        const std::span<const std::uint8_t> body = p.body;
        switch (p.type) {
        case packet_type::state_manipulate: return on_reply(std::move(p.body));
        case packet_type::state_change64: return on_state_change(body);
        case packet_type::debug_io: return on_debug_io(body);
        case packet_type::file_io: return on_file_io(body);
        default: return;  // nothing a debugger must act on
        }
    }

    void on_reply(std::vector<std::uint8_t> body) {
        const auto h = decode_manipulate(body);
        if (!in_flight_ || !queue_.front().reply_expected || !h || !is_reply_to(queue_.front().header, *h)) {
            ++stray_replies_;
            return;
        }
        exchange_.answered();
        finish_front({}, reply{*h, std::move(body)});
    }

    void on_state_change(std::span<const std::uint8_t> body) {
        const auto h = decode_state_change(body);
        if (!h) return;
        // A Continue still waiting for its ACK was delivered: the target ran and stopped again.
        if (in_flight_ && !queue_.front().reply_expected) {
            exchange_.answered();
            finish_front({}, {});
        }
        stopped_ = true;
        breakins_left_ = 0;
        last_stop_ = {*h, {body.begin() + state_change_header_size, body.end()}};
        if (handlers_.state_change) handlers_.state_change(last_stop_);
        auto waiters = std::move(stop_waiters_);
        stop_waiters_.clear();
        for (auto& w : waiters) w.done(std::error_code{}, last_stop_);
        start_next();
    }

    void on_debug_io(std::span<const std::uint8_t> body) {
        const auto h = decode_debug_io(body);
        if (!h) return;
        const auto text = body.subspan(debug_io_header_size);
        const std::string_view s(reinterpret_cast<const char*>(text.data()),
                                 std::min<std::size_t>(text.size(), h->length_of_string));
        if (h->api == debug_io_api::print_string) {
            if (handlers_.print) handlers_.print(s);
        } else if (h->api == debug_io_api::get_string) {
            // DbgPrompt waits for the answer: give one, even if nobody is asked.
            std::string answer = handlers_.prompt ? handlers_.prompt(s) : std::string();
            debug_io_header a = *h;
            a.length_of_string_read = static_cast<std::uint32_t>(answer.size());
            std::uint8_t header[debug_io_header_size];
            encode_debug_io(a, header);
            send_answer(wire::packet_type::debug_io, header,
                        {reinterpret_cast<const std::uint8_t*>(answer.data()), answer.size()});
        }
    }

    void on_file_io(std::span<const std::uint8_t> body) {
        const auto h = decode_file_io(body);
        if (!h) return;
        if (handlers_.file_request) handlers_.file_request(*h, body.subspan(file_io_header_size));
        // .kdfiles: we serve no replacement files. The target waits for the answer.
        file_io_header a = *h;
        a.status = status::no_such_file;
        std::uint8_t header[file_io_header_size];
        encode_file_io(a, header);
        send_answer(wire::packet_type::file_io, header, {});
    }

    // An answer the target asked for. A target waits for each answer before it asks again; one
    // that asks without waiting (or never acknowledges) cannot make the queue of answers grow:
    // beyond a few outstanding, further ones are dropped and counted.
    void send_answer(wire::packet_type type, std::span<const std::uint8_t> header, std::span<const std::uint8_t> data) {
        constexpr unsigned outstanding_limit = 4;
        if (answers_outstanding_ >= outstanding_limit) {
            ++answers_dropped_;
            return;
        }
        ++answers_outstanding_;
        session_->async_send(type, header, data, [self = shared_from_this()](std::error_code) { --self->answers_outstanding_; });
    }

    void on_notice(const net::session_notice& n) {
        if (n.event && std::holds_alternative<events::peer_reset>(*n.event)) {
            // Outside the session's own event loop: the exchange may send from here.
            asio::post(executor_, [self = shared_from_this()] {
                if (!self->in_flight_) return;
                session_port p{*self};
                self->exchange_.peer_reset(p, now());
            });
        }
        if (handlers_.notice) handlers_.notice(n);
        if (n.kind == net::session_notice::what::closed) fail_everything(net::session_errc::closed);
    }

    // ---- Memory in pieces --------------------------------------------------------------------------

    // A memory transfer in pieces of at most options.max_transfer: a read (each piece handed to
    // `sink`) or a write (of `bytes`).
    struct transfer {
        std::uint32_t api;
        std::uint64_t address, size, moved = 0;
        std::vector<std::uint8_t> bytes;  // a write's; empty for a read
        chunk_sink sink;                  // a read's
        std::function<void(std::error_code, std::uint64_t moved)> done;
    };

    // Asks for the next piece, and from its reply the one after, until all moved or one fails.
    void transfer_in_pieces(std::shared_ptr<transfer> t) {
        if (t->moved >= t->size) return t->done(std::error_code{}, t->moved);
        manipulate_header h;
        h.api = t->api;
        const auto count = static_cast<std::uint32_t>(std::min<std::uint64_t>(options_.max_transfer, t->size - t->moved));
        h.memory = {t->address + t->moved, count, 0};
        const auto data = t->bytes.empty() ? std::span<const std::uint8_t>() : std::span(t->bytes).subspan(t->moved, count);
        submit(encode(h, data), h, true, [this, t, count](std::error_code ec, reply r) {
            if (ec) return t->done(ec, t->moved);
            std::size_t moved = std::min(r.header.memory.actual_bytes, count);
            if (is_read_api(t->api)) {
                const auto read = r.data();
                moved = std::min(moved, read.size());
                if (moved > 0 && t->sink) t->sink(t->moved, read.first(moved));
            }
            t->moved += moved;
            if (failed(r.header.return_status)) return t->done(ntstatus_error(r.header.return_status), t->moved);
            if (moved < count) return t->done(client_errc::short_transfer, t->moved);
            transfer_in_pieces(std::move(t));
        });
    }

    void fail_stop_waiters(std::error_code ec) {
        auto waiters = std::move(stop_waiters_);
        stop_waiters_.clear();
        for (auto& w : waiters) w.done(ec, {});
    }

    void fail_everything(std::error_code ec) {
        if (ec == net::session_errc::closed) closed_ = true;
        breakins_left_ = 0;
        timer_.cancel();
        timer_armed_ = false;
        auto ops = std::move(queue_);
        queue_.clear();
        in_flight_ = false;
        for (auto& op : ops) op.done(ec, {});
        fail_stop_waiters(ec);
    }

    std::shared_ptr<net::session> session_;
    asio::any_io_executor executor_;
    client_options options_;
    client_handlers handlers_;

    std::deque<operation> queue_;  // front: in flight when in_flight_
    bool in_flight_ = false;
    request_exchange exchange_;
    bool send_in_flight_ = false;
    std::uint64_t send_generation_ = 0;
    asio::steady_timer timer_;
    bool timer_armed_ = false;
    timestamp timer_due_{};

    bool closed_ = false;  // the session closed: whatever is asked from now on fails at once
    bool stopped_ = false;
    stop_report last_stop_;
    struct stop_waiter {
        std::uint64_t tag;  // a blocking wait's, to withdraw it; 0 for the others
        std::function<void(std::error_code, stop_report)> done;
    };
    std::deque<stop_waiter> stop_waiters_;
    std::atomic<std::uint64_t> last_wait_tag_{0};
    unsigned breakins_left_ = 0;
    timestamp next_breakin_{};
    std::atomic<unsigned> breakin_presses_{0};

    std::uint64_t stray_replies_ = 0;
    unsigned answers_outstanding_ = 0;  // prompt and file answers not yet acknowledged
    std::uint64_t answers_dropped_ = 0;
};

}  // namespace kdcom::kd
