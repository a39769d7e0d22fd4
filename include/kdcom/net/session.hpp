// The Asio binding: a session runs one kdcom::session::core (an endpoint with its queues and
// timing policies, kdcom/session/core.hpp) over one link. It opens the link, reads bytes into the
// core, writes what the core hands out, arms one steady_timer for the core's deadline, and
// completes the application's operations from the core's events. Nothing protocol-specific, and
// no queueing or timing rule, happens here: those are the core's, tested in virtual time.
//
//     asio::io_context io;
//     auto s = kdcom::net::session::create(std::move(link), {.role = kdcom::role::debugger});
//     s->start();
//     s->async_send(type, header, data, [](std::error_code ec) { ... });     // or asio::use_future,
//     s->async_receive([](std::error_code ec, kdcom::net::received_packet p) { ... });  // use_awaitable
//     io.run();
//
// Threads: every member except the blocking send()/receive() must be called on the link's
// executor (the io_context's thread, or its strand). Many sessions may share one io_context.
// The blocking calls wait for the io_context to run on another thread.
//
// Handlers: never called inside the call that started their operation. An operation finished by
// arriving bytes or a timer has its handler called right then (dispatched to its executor, as
// Asio's own operations do), before the session writes: what that handler sends leaves in the
// same write as the acknowledgement of the packet it was given.
//
// Links: when the stream ends (the peer went away), the session opens its link again after a
// growing delay (a client reconnects; a listener accepts the next peer). A debugger
// session then runs the reset handshake; a target session answers the new debugger's. The send
// in progress is kept and sent again. Without `reconnect`, the session closes instead.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include <asio/async_result.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_future.hpp>

#include "kdcom/endpoint/endpoint.hpp"
#include "kdcom/session/core.hpp"
#include "kdcom/net/byte_stream.hpp"
#include "kdcom/net/detail/erased_handler.hpp"

namespace kdcom::net {

using received_packet = kdcom::session::received_packet;

enum class direction : std::uint8_t { to_peer, from_peer };

// Sees every byte the session writes or reads, with the time, before anything else happens to
// it. Captures plug in here.
using tap_function = std::function<void(direction, timestamp, std::span<const std::uint8_t>)>;

// What the session reports about itself, for tools that print state changes.
struct session_notice {
    enum class what : std::uint8_t {
        stream_opened,  // a peer is connected (text: who)
        stream_closed,  // the peer went away (text: why)
        link_failed,    // opening the link failed (text: why); retrying if reconnecting
        endpoint_event, // see `event`: peer_reset, link_changed, breakin_pending
        closed,         // the session is closed for good
    };
    what kind = what::closed;
    std::string text;
    std::optional<endpoint_event> event;  // spans inside are not valid after the callback
};
using notice_function = std::function<void(const session_notice&)>;

// "stream opened" and so on, for messages.
constexpr std::string_view notice_name(session_notice::what w) noexcept {
    switch (w) {
    case session_notice::what::stream_opened: return "stream opened";
    case session_notice::what::stream_closed: return "stream closed";
    case session_notice::what::link_failed: return "link failed";
    case session_notice::what::endpoint_event: return "endpoint event";
    case session_notice::what::closed: return "closed";
    }
    return "unknown";
}

// Queue bounds, acknowledgement delay, reconnection backoff: see kdcom/session/core.hpp.
using session_options = kdcom::session::options;

// Error codes the session's operations complete with, besides the transport's own.
enum class session_errc {
    given_up = 1,  // a droppable send ran out of retries (KdSendPacket returned)
    closed,        // the session was closed
    timed_out,     // a blocking call's timeout passed
};

inline const std::error_category& session_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "kdcom.session"; }
        std::string message(int v) const override {
            switch (static_cast<session_errc>(v)) {
            case session_errc::given_up: return "send given up: no debugger answered";
            case session_errc::closed: return "session closed";
            case session_errc::timed_out: return "timed out";
            }
            return "unknown session error";
        }
    };
    static const category instance;
    return instance;
}
inline std::error_code make_error_code(session_errc e) noexcept { return {static_cast<int>(e), session_category()}; }

}  // namespace kdcom::net

template <>
struct std::is_error_code_enum<kdcom::net::session_errc> : std::true_type {};

namespace kdcom::net {

class session : public std::enable_shared_from_this<session> {
public:
    using send_signature = void(std::error_code);
    using receive_signature = void(std::error_code, received_packet);

    static std::shared_ptr<session> create(std::unique_ptr<link> l, const endpoint_config& config,
                                           const session_options& options = {}) {
        return std::shared_ptr<session>(new session(std::move(l), config, options));
    }

    ~session() = default;
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    asio::any_io_executor get_executor() const { return executor_; }

    // Opens the link and starts running. Call once.
    void start() {
        asio::post(executor_, [self = shared_from_this()] { self->open_link(); });
    }

    // Sends one data packet; header and data are taken before this returns (the caller may reuse
    // them at once). Completes with no error when the peer acknowledged it,
    // session_errc::given_up for a droppable send nobody answered, asio::error::operation_aborted
    // if cancelled, session_errc::closed if the session closed. Sends queue up and go out one at a
    // time, in order.
    template <class CompletionToken>
    auto async_send(wire::packet_type type, std::span<const std::uint8_t> header,
                    std::span<const std::uint8_t> data, CompletionToken&& token) {
        // A callback is initiated inside this call. On the session's thread the core takes the
        // bytes now, straight into the endpoint's frame when it is free: no copy of the body.
        if constexpr (std::is_invocable_v<std::decay_t<CompletionToken>&, std::error_code>) {
            if (detail::runs_in_this_thread(executor_))
                return asio::async_initiate<CompletionToken, send_signature>(
                    [self = shared_from_this(), type, header, data](auto handler) {
                        detail::erased_handler<send_signature> h(std::move(handler), self->executor_);
                        self->accept_send(std::move(h), [&](timestamp t) { return self->core_.send(type, header, data, t); });
                    },
                    token);
        }
        std::vector<std::uint8_t> body(header.begin(), header.end());
        body.insert(body.end(), data.begin(), data.end());
        return asio::async_initiate<CompletionToken, send_signature>(
            [self = shared_from_this(), type, body = std::move(body)](auto handler) mutable {
                detail::erased_handler<send_signature> h(std::move(handler), self->executor_);
                detail::dispatch_to(self->executor_, [self, type, body = std::move(body), h = std::move(h)]() mutable {
                    self->accept_send(std::move(h), [&](timestamp t) { return self->core_.send(type, body, {}, t); });
                });
            },
            token);
    }

    // Takes the next delivered data packet, waiting for one if needed.
    template <class CompletionToken>
    auto async_receive(CompletionToken&& token) {
        return asio::async_initiate<CompletionToken, receive_signature>(
            [self = shared_from_this()](auto handler) {
                detail::erased_handler<receive_signature> h(std::move(handler), self->executor_);
                detail::dispatch_to(self->executor_, [self, h = std::move(h)]() mutable { self->queue_receive(std::move(h)); });
            },
            token);
    }

    // Debugger: a break-in ('b'). Target: whether one is pending (clears it).
    void send_breakin() {
        core_.send_breakin(now());
        pump(pump_origin::call);
    }
    bool poll_breakin() { return core_.poll_breakin(); }
    // Debugger: a new reset handshake. Target: restart ids with SYNC.
    void start_reset() {
        core_.start_reset(now());
        pump(pump_origin::call);
    }
    // Abandons the send in progress (its handler gets operation_aborted).
    void cancel_send() {
        core_.cancel_send(now());
        pump(pump_origin::call);
    }

    void set_tap(tap_function tap) { tap_ = std::move(tap); }
    void set_notice_handler(notice_function f) { notice_ = std::move(f); }

    // Closes the link and the stream; pending operations complete with session_errc::closed.
    // Bytes already queued for the peer (say, the acknowledgement of the packet whose handler
    // is closing the session) are still written, for at most options.close_linger, before the
    // stream closes.
    void close() {
        if (closed_) return;
        closed_ = true;
        timer_.cancel();
        reconnect_timer_.cancel();
        if (stream_) close_stream_after_writes();
        link_->close();
        core_.abandon_sends();
        for (auto& h : senders_) h.post(session_errc::closed);
        senders_.clear();
        for (auto& r : receivers_) r.post(session_errc::closed, received_packet{});
        receivers_.clear();
        notify(session_notice::what::closed, "closed");
    }

    const endpoint& protocol() const { return core_.protocol(); }
    bool connected() const { return stream_ != nullptr; }
    // Frames dropped because the peer did not read (session_options::write_queue_limit).
    std::uint64_t frames_dropped() const { return core_.frames_dropped(); }

    // ---- Blocking convenience, shaped like KdSendPacket / KdReceivePacket -------------------
    // For simulators and plugins that are synchronous by nature. Must not be called on the
    // io_context's own thread (it would wait for itself).

    std::error_code send(wire::packet_type type, std::span<const std::uint8_t> header,
                         std::span<const std::uint8_t> data, std::chrono::milliseconds timeout) {
        auto done = async_send(type, header, data, asio::use_future);
        if (done.wait_for(timeout) != std::future_status::ready) {
            asio::post(executor_, [self = shared_from_this()] { self->cancel_send(); });
            done.wait();
            return session_errc::timed_out;
        }
        try {
            done.get();
            return {};
        } catch (const std::system_error& e) {
            return e.code();
        }
    }

    std::optional<received_packet> receive(std::chrono::milliseconds timeout, std::error_code& ec) {
        auto promise = std::make_shared<std::promise<std::pair<std::error_code, received_packet>>>();
        auto future = promise->get_future();
        async_receive([promise](std::error_code e, received_packet p) { promise->set_value({e, std::move(p)}); });
        if (future.wait_for(timeout) != std::future_status::ready) {
            // Withdraw the wait so a later packet is not swallowed by it.
            asio::post(executor_, [self = shared_from_this()] { self->withdraw_oldest_receiver(); });
            auto [e, p] = future.get();
            if (!e) {
                ec.clear();
                return std::move(p);  // it arrived while the wait was being withdrawn
            }
            ec = session_errc::timed_out;
            return std::nullopt;
        }
        auto [e, p] = future.get();
        ec = e;
        if (e) return std::nullopt;
        return std::move(p);
    }

private:
    using write_mode = kdcom::session::write_mode;
    using send_finished = kdcom::session::session_events::send_finished;

    // An operation the core finished whose handler has not been called yet: a send, or a
    // receive with its packet.
    struct finished_operation {
        static finished_operation sent(detail::erased_handler<send_signature> h, std::error_code ec) {
            finished_operation f;
            f.send = std::move(h);
            f.ec = ec;
            return f;
        }
        static finished_operation received(detail::erased_handler<receive_signature> h, received_packet p) {
            finished_operation f;
            f.receive = std::move(h);
            f.packet = std::move(p);
            return f;
        }
        detail::erased_handler<send_signature> send;
        detail::erased_handler<receive_signature> receive;
        std::error_code ec;
        received_packet packet;
    };

    session(std::unique_ptr<link> l, const endpoint_config& config, const session_options& options)
        : link_(std::move(l)),
          executor_(link_->get_executor()),
          core_(config, options),
          timer_(executor_),
          reconnect_timer_(executor_),
          read_buffer_(options.read_buffer_size) {}

    static timestamp now() { return std::chrono::steady_clock::now().time_since_epoch(); }

    void notify(session_notice::what kind, std::string text, std::optional<endpoint_event> e = {}) {
        if (notice_) notice_(session_notice{kind, std::move(text), std::move(e)});
    }

    // ---- Link and stream --------------------------------------------------------------------

    void open_link() {
        if (closed_) return;
        link_->async_open([self = shared_from_this()](std::error_code ec, std::unique_ptr<byte_stream> s) {
            self->on_link_opened(ec, std::move(s));
        });
    }

    void on_link_opened(std::error_code ec, std::unique_ptr<byte_stream> s) {
        if (closed_) {
            if (s) s->close();
            return;
        }
        if (ec) {
            notify(session_notice::what::link_failed, link_->describe() + ": " + ec.message());
            retry_link_or_close(core_.link_failed());
            return;
        }
        stream_ = std::move(s);
        ++stream_generation_;
        notify(session_notice::what::stream_opened, stream_->describe());
        core_.stream_opened(now());
        pump(pump_origin::io);
        start_read();
    }

    void retry_link_or_close(std::optional<timestamp> delay) {
        if (!delay) {
            close();
            return;
        }
        reconnect_timer_.expires_after(*delay);
        reconnect_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
            if (!ec) self->open_link();
        });
    }

    void on_stream_failed(std::error_code ec) {
        if (!stream_ || closed_) return;
        stream_->close();
        stream_.reset();
        reading_ = false;
        const auto delay = core_.stream_closed();
        notify(session_notice::what::stream_closed, ec.message());
        retry_link_or_close(delay);
    }

    // ---- Reading ----------------------------------------------------------------------------

    void start_read() {
        if (!stream_ || reading_ || closed_ || !core_.wants_read()) return;
        reading_ = true;
        const auto generation = stream_generation_;
        stream_->async_read_some(read_buffer_, [self = shared_from_this(), generation](std::error_code ec, std::size_t n) {
            self->on_read(ec, n, generation);
        });
    }

    void on_read(std::error_code ec, std::size_t n, std::uint64_t generation) {
        if (generation != stream_generation_ || closed_) return;  // from a stream already gone
        reading_ = false;
        if (ec) {
            on_stream_failed(ec);
            return;
        }
        const auto bytes = std::span<const std::uint8_t>(read_buffer_.data(), n);
        const auto t = now();
        if (tap_) tap_(direction::from_peer, t, bytes);
        core_.bytes_read(bytes, t);
        pump(pump_origin::io);
        start_read();
    }

    // ---- Writing ----------------------------------------------------------------------------

    // Writes what the core hands out (lone acknowledgements may wait for options.ack_delay: the
    // timer writes them when it is over). Most writes fit at once: then no completion goes round
    // the event loop.
    void start_write(write_mode mode = write_mode::hold_lone_acknowledgements) {
        if (!stream_) return;
        const auto bytes = core_.start_write(mode);
        if (bytes.empty()) return;
        const std::size_t taken = stream_->write_now(bytes);
        if (taken == bytes.size()) {
            core_.finish_write();
            return;
        }
        const auto generation = stream_generation_;
        stream_->async_write(bytes.subspan(taken), [self = shared_from_this(), generation](std::error_code ec, std::size_t) {
            if (generation != self->stream_generation_) return;
            self->core_.finish_write();
            if (self->closed_) {
                self->close_stream_after_writes();
                return;
            }
            if (ec) {
                self->on_stream_failed(ec);
                return;
            }
            self->start_write();
            self->arm_timer();  // for acknowledgements held meanwhile
            self->start_read();  // if a full write queue had stopped it
        });
    }

    // After close(): lets the queued bytes go out, then closes the stream; gives up on them
    // after close_linger (a peer that stopped reading must not keep the session alive).
    void close_stream_after_writes() {
        if (!stream_) return;
        start_write(write_mode::everything_now);
        if (!core_.writing()) {
            stream_->close();
            stream_.reset();
            timer_.cancel();
            return;
        }
        if (lingering_) return;
        lingering_ = true;
        timer_.expires_after(core_.settings().close_linger);
        timer_.async_wait([self = shared_from_this()](std::error_code ec) {
            if (ec || !self->stream_) return;
            self->stream_->close();  // the write in progress completes with operation_aborted
            self->stream_.reset();
        });
    }

    // ---- The core ---------------------------------------------------------------------------

    // Why pump() runs, which decides how the operations it completes are handed to their handlers.
    enum class pump_origin : std::uint8_t {
        call,  // the application called the session: handlers are posted, never run inside its call
        io,    // an I/O or timer completion: handlers run right here once the core's work is done
               // (Asio's own operations complete the same way), saving an event-loop turn each
    };

    // Carries out the core's events, completes the operations that finished, then writes and
    // re-arms the timer. A handler run from here may call the session again: that nested pump()
    // only drains the core; this one finishes the work. So an answer sent from a receive's
    // handler leaves in the same write as the packet's acknowledgement: one system call and one
    // wake-up of the peer instead of two, most of what KDCOM costs against a bare
    // request-and-answer exchange (docs/benchmarks.md).
    void pump(pump_origin origin) {
        const bool outermost = !pumping_;
        pumping_ = true;
        drain_events();
        if (!outermost) return;
        try {
            while (!finished_.empty()) {
                auto f = std::move(finished_.front());
                finished_.pop_front();
                complete(std::move(f), origin != pump_origin::call);
            }
        } catch (...) {
            // A handler threw (io_context catches it inside dispatch; a strand lets it through to
            // here). It leaves io_context::run() as it would from a posted handler, skipping what
            // our callers had left to do; the session stays usable: the rest of this pump, and the
            // next read, run as soon as the io_context runs again.
            pumping_ = false;
            asio::post(executor_, [self = shared_from_this()] {
                self->pump(pump_origin::io);
                self->start_read();
            });
            throw;
        }
        pumping_ = false;
        start_write();
        arm_timer();
    }

    void complete(finished_operation f, bool run_here) {
        if (f.receive) f.receive.complete(run_here, f.ec, std::move(f.packet));
        else f.send.complete(run_here, f.ec);
    }

    void drain_events() {
        namespace ev = kdcom::session::session_events;
        while (auto e = core_.next_event()) {
            if (auto* q = std::get_if<ev::queued_for_peer>(&*e)) {
                if (tap_) tap_(direction::to_peer, now(), q->bytes);
            } else if (std::holds_alternative<ev::packet_arrived>(*e)) {
                if (!receivers_.empty()) {
                    finished_.push_back(finished_operation::received(std::move(receivers_.front()), core_.take_received()));
                    receivers_.pop_front();
                }
            } else if (auto* f = std::get_if<ev::send_finished>(&*e)) {
                finish_send(*f);
            } else {
                notify(session_notice::what::endpoint_event, {}, std::get<ev::endpoint_notice>(*e).event);
            }
        }
    }

    // Keeps one timer wait pending for the core's earliest deadline, lazily: the wait is only
    // moved when a deadline comes earlier than it. A wait that fires with nothing due (the ACK
    // came, the deadline moved later) just re-arms. ACK deadlines are a second away while round
    // trips take microseconds, so this saves two timer system calls per packet.
    void arm_timer() {
        if (closed_) return;  // the timer waits for close()'s last writes now
        const auto deadline = core_.deadline();
        if (!deadline || (armed_ && armed_for_ <= *deadline)) return;
        armed_ = true;
        armed_for_ = *deadline;
        timer_.expires_at(std::chrono::steady_clock::time_point(
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(*deadline)));
        timer_.async_wait([self = shared_from_this()](std::error_code ec) {
            if (ec || self->closed_) return;  // moved earlier, or closed
            self->armed_ = false;
            self->core_.on_time(now());
            self->pump(pump_origin::io);
        });
    }

    // Gives a send to the core (`offer` calls core_.send with the time) and keeps its handler
    // for the send_finished event that will end it; a refusal is posted at once.
    template <class Offer>
    void accept_send(detail::erased_handler<send_signature> h, Offer&& offer) {
        if (closed_) {
            h.post(session_errc::closed);
            return;
        }
        if (const auto ec = offer(now())) {
            h.post(ec);
            return;
        }
        senders_.push_back(std::move(h));
        pump(pump_origin::call);
    }

    void finish_send(const send_finished& f) {
        if (senders_.empty()) return;
        using outcome = send_finished::outcome;
        std::error_code ec;
        switch (f.result) {
        case outcome::acknowledged: break;
        case outcome::given_up: ec = session_errc::given_up; break;
        case outcome::cancelled: ec = asio::error::operation_aborted; break;
        case outcome::refused: ec = f.error; break;
        }
        auto h = std::move(senders_.front());
        senders_.pop_front();
        // A refusal is not the peer's doing: it never runs inside a call, as before it did not.
        if (f.result == outcome::refused) h.post(ec);
        else finished_.push_back(finished_operation::sent(std::move(h), ec));
    }

    void queue_receive(detail::erased_handler<receive_signature> h) {
        if (core_.has_received()) {
            h.post(std::error_code{}, core_.take_received());
            start_read();  // the queue has room again
            return;
        }
        if (closed_) {
            h.post(session_errc::closed, received_packet{});
            return;
        }
        receivers_.push_back(std::move(h));
    }

    void withdraw_oldest_receiver() {
        if (receivers_.empty()) return;
        auto h = std::move(receivers_.front());
        receivers_.pop_front();
        h.post(session_errc::timed_out, received_packet{});
    }

    std::unique_ptr<link> link_;
    asio::any_io_executor executor_;
    kdcom::session::core core_;  // the rules: everything here is I/O and scheduling around it
    asio::steady_timer timer_;
    asio::steady_timer reconnect_timer_;
    bool armed_ = false;
    timestamp armed_for_{};

    std::unique_ptr<byte_stream> stream_;
    std::uint64_t stream_generation_ = 0;
    bool closed_ = false;

    std::vector<std::uint8_t> read_buffer_;
    bool reading_ = false;
    bool lingering_ = false;  // closed, waiting for the last writes
    bool pumping_ = false;    // inside pump(): a nested call only drains the core
    std::deque<finished_operation> finished_;

    std::deque<detail::erased_handler<send_signature>> senders_;  // one per send the core accepted, oldest first
    std::deque<detail::erased_handler<receive_signature>> receivers_;

    tap_function tap_;
    notice_function notice_;
};

}  // namespace kdcom::net
