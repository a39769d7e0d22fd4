// The Asio binding: a session runs one kdcom::endpoint over one link. It reads bytes, feeds them to
// the endpoint, writes what the endpoint transmits, arms one steady_timer for the endpoint's
// deadline, and completes the application's operations. Nothing protocol-specific happens here.
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
#include "kdcom/net/byte_stream.hpp"
#include "kdcom/net/detail/erased_handler.hpp"

namespace kdcom::net {

struct received_packet {
    wire::packet_type type{};
    std::uint32_t id = 0;
    std::vector<std::uint8_t> body;
};

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

struct session_options {
    bool reconnect = true;                           // open the link again when the stream ends
    timestamp reconnect_delay_min = std::chrono::milliseconds(50);
    timestamp reconnect_delay_max = std::chrono::seconds(5);
    std::size_t read_buffer_size = 16 * 1024;  // several maximal frames per read
    // Delivered packets the application has not taken yet; beyond this the session stops reading
    // until it does (the peer's retransmissions then wait), so memory stays bounded.
    std::size_t receive_queue_limit = 256;
    // Bytes waiting to be written to a peer that does not read them (it may be sending all the
    // while: a flood of RESETs each asks for an answer). At this bound the session stops reading
    // the peer until the bytes drain, and a frame that would go past it is dropped and counted
    // (frames_dropped()): the protocol recovers from a lost frame as from line noise, by
    // retransmission, so memory stays bounded whatever the peer does.
    std::size_t write_queue_limit = 1 << 20;
    // How long an acknowledgement may wait for a packet to leave with it. A target whose answers
    // take a moment (a bridge waiting for its guest) saves the debugger a wake-up per request when
    // the answer comes within this time; zero writes acknowledgements at once (unless a handler
    // sends something right away: see pump()). Keep it far below the peer's retransmission time
    // (about a second for WinDbg and kdcom.dll).
    timestamp ack_delay = timestamp::zero();
    // How long close() keeps the stream open to write what is still queued.
    timestamp close_linger = std::chrono::milliseconds(200);
};

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
        // A callback is initiated inside this call. If the endpoint is free and this is its thread,
        // it takes the bytes now, straight into its frame: no copy of the body to keep until then.
        if constexpr (std::is_invocable_v<std::decay_t<CompletionToken>&, std::error_code>) {
            if (can_send_at_once())
                return asio::async_initiate<CompletionToken, send_signature>(
                    [self = shared_from_this(), type, header, data](auto handler) {
                        detail::erased_handler<send_signature> h(std::move(handler), self->executor_);
                        self->send_at_once(type, header, data, std::move(h));
                    },
                    token);
        }
        std::vector<std::uint8_t> body(header.begin(), header.end());
        body.insert(body.end(), data.begin(), data.end());
        return asio::async_initiate<CompletionToken, send_signature>(
            [self = shared_from_this(), type, body = std::move(body)](auto handler) mutable {
                detail::erased_handler<send_signature> h(std::move(handler), self->executor_);
                detail::dispatch_to(self->executor_, [self, type, body = std::move(body), h = std::move(h)]() mutable {
                    self->queue_send(type, std::move(body), std::move(h));
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
        endpoint_.send_breakin(now());
        pump(pump_origin::call);
    }
    bool poll_breakin() { return endpoint_.poll_breakin(); }
    // Debugger: a new reset handshake. Target: restart ids with SYNC.
    void start_reset() {
        endpoint_.start_reset(now());
        pump(pump_origin::call);
    }
    // Abandons the send in progress (its handler gets operation_aborted).
    void cancel_send() {
        endpoint_.cancel_send(now());
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
        for (auto& s : sends_) s.handler.post(session_errc::closed);
        sends_.clear();
        for (auto& r : receivers_) r.post(session_errc::closed, received_packet{});
        receivers_.clear();
        notify(session_notice::what::closed, "closed");
    }

    const endpoint& protocol() const { return endpoint_; }
    bool connected() const { return stream_ != nullptr; }
    // Frames dropped because the peer did not read (session_options::write_queue_limit).
    std::uint64_t frames_dropped() const { return frames_dropped_; }

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
    struct queued_send {
        wire::packet_type type;
        std::vector<std::uint8_t> body;  // until the endpoint takes it (empty after)
        detail::erased_handler<send_signature> handler;
    };

    // An operation the endpoint finished whose handler has not been called yet: a send, or a
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
          endpoint_(config),
          options_(options),
          timer_(executor_),
          reconnect_timer_(executor_),
          reconnect_delay_(options.reconnect_delay_min),
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
            if (!options_.reconnect) {
                close();
                return;
            }
            retry_link_later();
            return;
        }
        reconnect_delay_ = options_.reconnect_delay_min;
        stream_ = std::move(s);
        ++stream_generation_;
        notify(session_notice::what::stream_opened, stream_->describe());
        // A new peer, or the old one back: whatever was half-read belongs to the old stream.
        endpoint_.discard_input();
        // A debugger runs the reset handshake on every new stream (unless resets are off, like
        // WinDbg's resets=0): a RESET sent before there was a stream went nowhere.
        const endpoint_config& c = endpoint_.config();
        if (c.role == role::debugger && c.send_resets) endpoint_.start_reset(now());
        else endpoint_.on_time(now());
        pump(pump_origin::io);
        start_read();
    }

    void retry_link_later() {
        reconnect_timer_.expires_after(reconnect_delay_);
        reconnect_delay_ = std::min(reconnect_delay_ * 2, options_.reconnect_delay_max);
        reconnect_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
            if (!ec) self->open_link();
        });
    }

    void on_stream_failed(std::error_code ec) {
        if (!stream_ || closed_) return;
        stream_->close();
        stream_.reset();
        writing_ = false;
        write_queue_.clear();
        acks_held_until_.reset();
        reading_ = false;
        notify(session_notice::what::stream_closed, ec.message());
        if (options_.reconnect) retry_link_later();
        else close();
    }

    // ---- Reading ----------------------------------------------------------------------------

    std::size_t bytes_unwritten() const { return write_queue_.size() + writing_bytes_.size(); }

    void start_read() {
        if (!stream_ || reading_ || closed_ || received_.size() >= options_.receive_queue_limit ||
            bytes_unwritten() >= options_.write_queue_limit)
            return;
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
        if (tap_) tap_(direction::from_peer, now(), bytes);
        endpoint_.receive(bytes, now());
        pump(pump_origin::io);
        start_read();
    }

    // ---- Writing ----------------------------------------------------------------------------

    void queue_write(std::span<const std::uint8_t> bytes, bool acknowledgement) {
        if (!stream_) return;  // nobody to write to; the endpoint's timers re-send what matters
        if (bytes_unwritten() + bytes.size() > options_.write_queue_limit) {
            ++frames_dropped_;  // as if the line had lost it (see session_options::write_queue_limit)
            return;
        }
        if (tap_) tap_(direction::to_peer, now(), bytes);
        only_acks_queued_ = (write_queue_.empty() || only_acks_queued_) && acknowledgement;
        write_queue_.insert(write_queue_.end(), bytes.begin(), bytes.end());
    }

    // Writes what is queued, unless it is only acknowledgements that options.ack_delay lets wait
    // for a packet to go with them; the timer writes them when the delay is over.
    void write_or_hold() {
        if (only_acks_queued_ && options_.ack_delay > timestamp::zero() && !write_queue_.empty()) {
            const auto t = now();
            if (!acks_held_until_) acks_held_until_ = t + options_.ack_delay;
            if (t < *acks_held_until_) return;
        }
        start_write();
    }

    void start_write() {
        if (!stream_ || writing_ || write_queue_.empty()) return;
        acks_held_until_.reset();
        // Most writes fit at once: then no completion goes round the event loop.
        const std::size_t taken = stream_->write_now(write_queue_);
        if (taken == write_queue_.size()) {
            write_queue_.clear();
            return;
        }
        writing_ = true;
        std::swap(write_queue_, writing_bytes_);
        write_queue_.clear();
        writing_bytes_.erase(writing_bytes_.begin(), writing_bytes_.begin() + static_cast<std::ptrdiff_t>(taken));
        const auto generation = stream_generation_;
        stream_->async_write(writing_bytes_, [self = shared_from_this(), generation](std::error_code ec, std::size_t) {
            if (generation != self->stream_generation_) return;
            self->writing_ = false;
            if (self->closed_) {
                self->close_stream_after_writes();
                return;
            }
            if (ec) {
                self->on_stream_failed(ec);
                return;
            }
            self->start_write();
            self->start_read();  // if a full write queue had stopped it
        });
    }

    // After close(): lets the queued bytes go out, then closes the stream; gives up on them
    // after close_linger (a peer that stopped reading must not keep the session alive).
    void close_stream_after_writes() {
        if (!stream_) return;
        if (!write_queue_.empty() && !writing_) start_write();
        if (!writing_) {
            stream_->close();
            stream_.reset();
            timer_.cancel();
            return;
        }
        if (lingering_) return;
        lingering_ = true;
        timer_.expires_after(options_.close_linger);
        timer_.async_wait([self = shared_from_this()](std::error_code ec) {
            if (ec || !self->stream_) return;
            self->stream_->close();  // the write in progress completes with operation_aborted
            self->stream_.reset();
        });
    }

    // ---- The endpoint -----------------------------------------------------------------------

    // Why pump() runs, which decides how the operations it completes are handed to their handlers.
    enum class pump_origin : std::uint8_t {
        call,  // the application called the session: handlers are posted, never run inside its call
        io,    // an I/O or timer completion: handlers run right here once the endpoint's work is
               // done (Asio's own operations complete the same way), saving an event-loop turn each
    };

    // Carries out everything the endpoint asked for (starting the next queued send as soon as the
    // endpoint is free, and carrying out what that asks for too), completes the operations that
    // finished, then writes and re-arms the timer. A handler run from here may call the session
    // again: that nested pump() only feeds the endpoint; this one finishes the work. So an answer
    // sent from a receive's handler leaves in the same write as the packet's acknowledgement: one
    // system call and one wake-up of the peer instead of two, most of what KDCOM costs against a
    // bare request-and-answer exchange (docs/benchmarks.md).
    void pump(pump_origin origin) {
        const bool outermost = !pumping_;
        pumping_ = true;
        do {
            drain_events();
        } while (start_next_send());
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
        write_or_hold();
        arm_timer();
    }

    void complete(finished_operation f, bool run_here) {
        if (f.receive) f.receive.complete(run_here, f.ec, std::move(f.packet));
        else f.send.complete(run_here, f.ec);
    }

    void drain_events() {
        while (auto e = endpoint_.next_event()) {
            if (auto* t = std::get_if<events::transmit>(&*e)) {
                queue_write(t->bytes(), t->kind == events::transmit::what::control_packet &&
                                            t->type == wire::packet_type::acknowledge);
            } else if (auto* p = std::get_if<events::packet_received>(&*e)) {
                received_packet packet{p->type, p->id, std::vector<std::uint8_t>(p->body.begin(), p->body.end())};
                if (!receivers_.empty()) {
                    finished_.push_back(finished_operation::received(std::move(receivers_.front()), std::move(packet)));
                    receivers_.pop_front();
                } else {
                    received_.push_back(std::move(packet));
                }
            } else if (auto* c = std::get_if<events::send_completed>(&*e)) {
                finish_send(c->result);
            } else {
                notify(session_notice::what::endpoint_event, {}, *e);
            }
        }
    }

    // Keeps one timer wait pending for the endpoint's earliest deadline, lazily: the wait is only
    // moved when a deadline comes earlier than it. A wait that fires with nothing due (the ACK
    // came, the deadline moved later) just re-arms. ACK deadlines are a second away while round
    // trips take microseconds, so this saves two timer system calls per packet.
    void arm_timer() {
        if (closed_) return;  // the timer waits for close()'s last writes now
        auto deadline = endpoint_.deadline();
        if (acks_held_until_ && (!deadline || *acks_held_until_ < *deadline)) deadline = acks_held_until_;
        if (!deadline || (armed_ && armed_for_ <= *deadline)) return;
        armed_ = true;
        armed_for_ = *deadline;
        timer_.expires_at(std::chrono::steady_clock::time_point(
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(*deadline)));
        timer_.async_wait([self = shared_from_this()](std::error_code ec) {
            if (ec || self->closed_) return;  // moved earlier, or closed
            self->armed_ = false;
            self->endpoint_.on_time(now());
            self->pump(pump_origin::io);
        });
    }

    void queue_send(wire::packet_type type, std::vector<std::uint8_t> body, detail::erased_handler<send_signature> h) {
        if (closed_) {
            h.post(session_errc::closed);
            return;
        }
        sends_.push_back({type, std::move(body), std::move(h)});
        pump(pump_origin::call);
    }

    // Whether a send can go to the endpoint inside async_send: nothing ahead of it, and the
    // caller on the thread running this session's io_context (the only executor this can be
    // checked on; a strand's or another's sends take the queue).
    bool can_send_at_once() const {
        // The thread first: only then may the session's state be read (executor_ never changes).
        return detail::runs_in_this_thread(executor_) && !closed_ && !sending_ && sends_.empty();
    }

    void send_at_once(wire::packet_type type, std::span<const std::uint8_t> header, std::span<const std::uint8_t> data,
                      detail::erased_handler<send_signature> h) {
        if (const auto ec = endpoint_.send(type, header, data, now())) {
            h.post(ec);
            return;
        }
        sending_ = true;
        sends_.push_back({type, {}, std::move(h)});  // the endpoint holds the frame
        pump(pump_origin::call);
    }

    // Hands the next queued send to the endpoint if it is free. Returns whether it did (the
    // endpoint then has events to carry out).
    bool start_next_send() {
        while (!sends_.empty() && !sending_ && !closed_) {
            auto& s = sends_.front();
            if (const auto ec = endpoint_.send(s.type, s.body, {}, now())) {
                auto h = std::move(s.handler);
                sends_.pop_front();
                h.post(ec);
                continue;
            }
            s.body = {};  // the endpoint has its own copy in the frame
            sending_ = true;
            return true;
        }
        return false;
    }

    void finish_send(events::send_completed::outcome outcome) {
        sending_ = false;
        if (sends_.empty()) return;
        std::error_code ec;
        switch (outcome) {
        case events::send_completed::outcome::acknowledged: break;
        case events::send_completed::outcome::given_up: ec = session_errc::given_up; break;
        case events::send_completed::outcome::cancelled: ec = asio::error::operation_aborted; break;
        }
        finished_.push_back(finished_operation::sent(std::move(sends_.front().handler), ec));
        sends_.pop_front();
    }

    void queue_receive(detail::erased_handler<receive_signature> h) {
        if (!received_.empty()) {
            auto p = std::move(received_.front());
            received_.pop_front();
            h.post(std::error_code{}, std::move(p));
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
    endpoint endpoint_;
    session_options options_;
    asio::steady_timer timer_;
    asio::steady_timer reconnect_timer_;
    bool armed_ = false;
    timestamp armed_for_{};

    std::unique_ptr<byte_stream> stream_;
    std::uint64_t stream_generation_ = 0;
    std::uint64_t frames_dropped_ = 0;
    bool closed_ = false;
    timestamp reconnect_delay_;

    std::vector<std::uint8_t> read_buffer_;
    bool reading_ = false;
    std::vector<std::uint8_t> write_queue_, writing_bytes_;
    bool writing_ = false;
    bool only_acks_queued_ = false;             // the write queue holds acknowledgements only
    std::optional<timestamp> acks_held_until_;  // when held acknowledgements must go (ack_delay)
    bool lingering_ = false;                    // closed, waiting for the last writes
    bool pumping_ = false;                      // inside pump(): a nested call only feeds the endpoint
    std::deque<finished_operation> finished_;

    std::deque<queued_send> sends_;  // front: the one the endpoint is sending when sending_
    bool sending_ = false;
    std::deque<received_packet> received_;
    std::deque<detail::erased_handler<receive_signature>> receivers_;

    tap_function tap_;
    notice_function notice_;
};

}  // namespace kdcom::net
