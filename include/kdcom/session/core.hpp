// A session's rules, sans-I/O: one endpoint over a byte stream that comes and goes, with the
// queues an application needs around it (sends in order, one at a time; delivered packets kept
// until taken; bytes for the peer kept until written, within bounds) and the timing policies
// (acknowledgements held for an answer, reconnection backoff). It owns no socket, timer, clock or
// handler: the runner (net/session.hpp with Asio; tests in virtual time) feeds it bytes, stream
// changes and time, writes what it hands out and completes the application's operations from its
// events.
//
//     session::core c(endpoint_config{.role = role::target}, options);
//     c.stream_opened(now);
//     c.bytes_read(bytes, now);                    // or send(), on_time(), stream_closed(), ...
//     while (auto e = c.next_event()) run(*e);     // a send finished, a packet arrived, ...
//     auto out = c.start_write();                  // write `out`, then finish_write()
//     ...                                          // call on_time(now) when now >= *c.deadline()
//
// Contracts:
// - Drain the events after each input (the endpoint's rule: bytes given to bytes_read() stay
//   valid until next_event() returns nullopt); spans in events are valid until the next call.
// - Every send accepted by send() ends in exactly one send_finished event, in the order accepted,
//   unless abandon_sends() forgot it first.
// - Memory is bounded by the options: receive_queue_limit packets (wants_read() turns false at
//   the bound; the read that reached it may add the rest of its bytes' packets), write_queue_limit
//   bytes or one frame if that is larger (frames beyond it are dropped and counted, as if the line
//   had lost them; the endpoint's retransmission recovers).
// - Time never goes backwards between calls. Not thread-safe: one thread at a time.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "kdcom/endpoint/endpoint.hpp"
#include "kdcom/session/packet_queue.hpp"

namespace kdcom::session {

using kdcom::received_packet;

struct options {
    bool reconnect = true;  // open the link again when the stream ends
    timestamp reconnect_delay_min = std::chrono::milliseconds(50);
    timestamp reconnect_delay_max = std::chrono::seconds(5);
    std::size_t read_buffer_size = 16 * 1024;  // the runner's: several maximal frames per read
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
    // the answer comes within this time; zero writes acknowledgements at once. Keep it far below
    // the peer's retransmission time (about a second for WinDbg and kdcom.dll).
    timestamp ack_delay = timestamp::zero();
    // The runner's: how long closing keeps the stream open to write what is still queued.
    timestamp close_linger = std::chrono::milliseconds(200);
};

namespace session_events {

// A send accepted by send() ended (the oldest one not yet finished).
struct send_finished {
    enum class outcome : std::uint8_t {
        acknowledged,  // the peer acknowledged it
        given_up,      // a droppable send ran out of retries (KdSendPacket returned)
        cancelled,     // cancel_send()
        refused,       // the endpoint would not take it when its turn came: see `error`
    };
    outcome result = outcome::acknowledged;
    std::error_code error;  // for refused
};

// A packet from the peer waits in the receive queue: take_received().
struct packet_arrived {};

// These bytes were queued for the peer (what a capture tap records), at the time of the input.
struct queued_for_peer {
    std::span<const std::uint8_t> bytes;
};

// Something the endpoint reports that is not a send or a packet: peer_reset, link_changed,
// breakin_pending.
struct endpoint_notice {
    endpoint_event event;
};

}  // namespace session_events

using session_event = std::variant<session_events::send_finished, session_events::packet_arrived,
                                   session_events::queued_for_peer, session_events::endpoint_notice>;

// Whether start_write() may keep acknowledgements back for options::ack_delay.
enum class write_mode : std::uint8_t {
    hold_lone_acknowledgements,  // the usual: acks alone wait for a packet to go with them
    everything_now,              // closing: write all that is queued
};

class core {
public:
    core(const endpoint_config& config, const options& o)
        : endpoint_(config), options_(o), reconnect_delay_(o.reconnect_delay_min) {}

    const options& settings() const noexcept { return options_; }
    const endpoint& protocol() const noexcept { return endpoint_; }

    // ---- The stream -------------------------------------------------------------------------

    // A stream to a peer is open (a new peer, or the old one back). What was half-read belongs to
    // the old stream. A debugger runs the reset handshake on every new stream (unless resets are
    // off, like WinDbg's resets=0): a RESET sent before there was a stream went nowhere.
    void stream_opened(timestamp now) {
        now_ = now;
        stream_open_ = true;
        reconnect_delay_ = options_.reconnect_delay_min;
        endpoint_.discard_input();
        const endpoint_config& c = endpoint_.config();
        if (c.role == role::debugger && c.send_resets) endpoint_.start_reset(now);
        else endpoint_.on_time(now);
    }

    // The stream ended (the runner has closed it: a write in flight is abandoned). Bytes queued
    // for that peer are dropped: the endpoint's timers re-send what matters on the next stream.
    // Returns how long to wait before opening the link again, or nullopt to close the session.
    std::optional<timestamp> stream_closed() {
        stream_open_ = false;
        queued_.clear();
        in_flight_.clear();
        writing_ = false;
        only_acks_queued_ = false;
        acks_held_until_.reset();
        return reconnect_after();
    }

    // Opening the link failed: how long to wait before trying again, or nullopt to close.
    std::optional<timestamp> link_failed() { return reconnect_after(); }

    // ---- Inputs -----------------------------------------------------------------------------

    // Bytes from the peer; they must stay valid until next_event() returns nullopt.
    void bytes_read(std::span<const std::uint8_t> bytes, timestamp now) {
        now_ = now;
        endpoint_.receive(bytes, now);
    }

    void on_time(timestamp now) {
        now_ = now;
        endpoint_.on_time(now);
    }

    // Sends one data packet after the ones accepted before it; header and data are taken before
    // this returns (straight into the endpoint's frame when it is free, else copied to wait).
    // An error means it was refused now (not a data type, too large) and no event will follow.
    std::error_code send(wire::packet_type type, std::span<const std::uint8_t> header,
                         std::span<const std::uint8_t> data, timestamp now) {
        now_ = now;
        if (endpoint_busy_ || !waiting_.empty()) {
            waiting_.push(type, 0, header, data);
            return {};
        }
        if (const auto ec = endpoint_.send(type, header, data, now_)) return ec;
        endpoint_busy_ = true;
        in_endpoint_ = true;
        return {};
    }

    // Abandons the send in progress (send_finished: cancelled).
    void cancel_send(timestamp now) {
        now_ = now;
        endpoint_.cancel_send(now);
    }
    // Forgets every accepted send (the session is closing): no event will report them.
    void abandon_sends() {
        waiting_.clear();
        in_endpoint_ = false;
    }

    // Debugger: a break-in ('b'). Target: whether one is pending (clears it).
    void send_breakin(timestamp now) {
        now_ = now;
        endpoint_.send_breakin(now);
    }
    bool poll_breakin() { return endpoint_.poll_breakin(); }
    // Debugger: a new reset handshake. Target: restart ids with SYNC.
    void start_reset(timestamp now) {
        now_ = now;
        endpoint_.start_reset(now);
    }

    // ---- Outputs ----------------------------------------------------------------------------

    // The next event, or nullopt when the last input has been fully handled. Starts the next
    // accepted send as soon as the endpoint is free (its frames are then part of this input).
    std::optional<session_event> next_event() {
        for (;;) {
            if (auto e = endpoint_.next_event()) {
                if (auto out = take(*e)) return out;
                continue;
            }
            if (endpoint_busy_ || waiting_.empty()) return std::nullopt;
            const received_packet& s = waiting_.pop();  // the endpoint copies it into its frame
            if (const auto ec = endpoint_.send(s.type, s.body, {}, now_))
                return session_events::send_finished{session_events::send_finished::outcome::refused, ec};
            endpoint_busy_ = true;
            in_endpoint_ = true;
        }
    }

    bool has_received() const noexcept { return !received_.empty(); }
    // The oldest packet not yet taken, moved out (its slot's buffer goes with it). Precondition:
    // has_received().
    received_packet take_received() {
        received_packet p = std::move(received_.front());
        received_.pop();
        return p;
    }
    // The same without taking its buffer: look at received_front(), then pop_received(). With
    // these a session in steady state allocates nothing per packet.
    const received_packet& received_front() const noexcept { return received_.front(); }
    void pop_received() noexcept { received_.pop(); }

    // Whether the runner should read the peer: a stream is open and neither queue is at its bound.
    bool wants_read() const noexcept {
        return stream_open_ && received_.size() < options_.receive_queue_limit &&
               bytes_unwritten() < options_.write_queue_limit;
    }

    // The bytes to write now, or nothing (a write in flight, nothing queued, or lone
    // acknowledgements held for ack_delay: deadline() says until when). "Now" is the time of the
    // last input (on_time() moves it). They stay valid and unchanged until finish_write(); bytes
    // queued meanwhile go in the next write.
    std::span<const std::uint8_t> start_write(write_mode mode = write_mode::hold_lone_acknowledgements) {
        if (writing_ || queued_.empty()) return {};
        if (mode == write_mode::hold_lone_acknowledgements && only_acks_queued_ &&
            options_.ack_delay > timestamp::zero()) {
            if (!acks_held_until_) acks_held_until_ = now_ + options_.ack_delay;
            if (now_ < *acks_held_until_) return {};
        }
        acks_held_until_.reset();
        only_acks_queued_ = false;
        std::swap(queued_, in_flight_);
        queued_.clear();
        writing_ = true;
        return in_flight_;
    }
    // The bytes start_write() gave are written (or given up with the stream).
    void finish_write() {
        writing_ = false;
        in_flight_.clear();
    }
    bool writing() const noexcept { return writing_; }
    std::size_t bytes_unwritten() const noexcept { return queued_.size() + in_flight_.size(); }

    // When on_time() or start_write() next has work to do, if ever.
    std::optional<timestamp> deadline() const {
        return earliest({endpoint_.deadline(), acks_held_until_});
    }

    // Frames dropped because the peer did not read (options::write_queue_limit).
    std::uint64_t frames_dropped() const noexcept { return frames_dropped_; }

private:
    // Turns one endpoint event into what the runner needs, if anything.
    std::optional<session_event> take(endpoint_event& e) {
        if (auto* t = std::get_if<events::transmit>(&e)) {
            const bool ack = t->kind == events::transmit::what::control_packet &&
                             t->type == wire::packet_type::acknowledge;
            if (!queue_for_peer(t->bytes(), ack)) return std::nullopt;
            // Not t->bytes(): a control packet's bytes live in the event, gone when this returns.
            return session_events::queued_for_peer{std::span<const std::uint8_t>(queued_).last(t->bytes().size())};
        }
        if (auto* p = std::get_if<events::packet_received>(&e)) {
            received_.push(p->type, p->id, p->body);
            return session_events::packet_arrived{};
        }
        if (auto* c = std::get_if<events::send_completed>(&e)) {
            endpoint_busy_ = false;
            if (!std::exchange(in_endpoint_, false)) return std::nullopt;  // abandoned
            using outcome = session_events::send_finished::outcome;
            switch (c->result) {
            case events::send_completed::outcome::acknowledged: return session_events::send_finished{outcome::acknowledged, {}};
            case events::send_completed::outcome::given_up: return session_events::send_finished{outcome::given_up, {}};
            case events::send_completed::outcome::cancelled: return session_events::send_finished{outcome::cancelled, {}};
            }
            return std::nullopt;
        }
        return session_events::endpoint_notice{std::move(e)};
    }

    // Returns whether the bytes were queued (not: no stream to take them, or over the bound).
    bool queue_for_peer(std::span<const std::uint8_t> bytes, bool acknowledgement) {
        if (!stream_open_) return false;  // nobody to write to; the endpoint's timers re-send what matters
        // Beyond the bound a frame is dropped, unless nothing waits: a frame larger than the
        // bound must still go out, or a small bound would stop that send for good.
        if (bytes_unwritten() > 0 && bytes_unwritten() + bytes.size() > options_.write_queue_limit) {
            ++frames_dropped_;
            return false;
        }
        only_acks_queued_ = (queued_.empty() || only_acks_queued_) && acknowledgement;
        queued_.insert(queued_.end(), bytes.begin(), bytes.end());
        return true;
    }

    std::optional<timestamp> reconnect_after() {
        if (!options_.reconnect) return std::nullopt;
        const auto d = reconnect_delay_;
        reconnect_delay_ = std::min(reconnect_delay_ * 2, options_.reconnect_delay_max);
        return d;
    }

    endpoint endpoint_;
    options options_;
    timestamp now_{};
    timestamp reconnect_delay_;
    bool stream_open_ = false;

    bool endpoint_busy_ = false;  // the endpoint is sending (maybe a send abandoned since)
    bool in_endpoint_ = false;    // ... a send accepted and not abandoned, older than the waiting
    packet_queue waiting_;        // accepted sends the endpoint has not taken yet, oldest first
    packet_queue received_;       // packets for the application, oldest first

    std::vector<std::uint8_t> queued_, in_flight_;
    bool writing_ = false;
    bool only_acks_queued_ = false;             // queued_ holds acknowledgements only
    std::optional<timestamp> acks_held_until_;  // when held acknowledgements must go (ack_delay)
    std::uint64_t frames_dropped_ = 0;
};

}  // namespace kdcom::session
