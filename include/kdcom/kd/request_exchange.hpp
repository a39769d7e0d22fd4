// A debugger's manipulate request until it is answered: sent through a debugger endpoint (or
// anything that sends like one: a request_port), matched with its reply by the caller, and sent
// again after a resynchronisation when the reply does not come. Sans-I/O, like the endpoint it
// drives: time in, decisions out.
//
// Why: an ACK proves the target read the packet, not that it will answer. ReactOS acknowledges a
// request whose PacketType was damaged and drops it; Xen's kdd never retransmits a lost reply.
// Without a reply timeout a debugger waits for ever on a live link. With one, it runs the reset
// handshake (both sides restart their ids; a Windows-style target reports its stop again) and
// sends the request again. A peer that executes the request twice answers twice: the caller's
// matcher drops the stray reply.
//
//     kd::request_exchange x;
//     x.start(ep, request, /*reply_expected=*/true, now);
//     ... for each endpoint event e:  x.on_event(ep, e, now);
//         (or, from a port that is not an endpoint: x.acknowledged(), x.peer_reset(port, now))
//         and for a reply the caller recognises: x.answered();
//     ... when now >= *x.deadline():  x.on_time(ep, now);
//     x.current() == state::failed after `resyncs` unanswered attempts.
//
// Contracts: the port is a debugger's and sends nothing else while a request is outstanding.
// Not thread-safe; the port's contract applies.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "kdcom/endpoint/endpoint.hpp"

namespace kdcom::kd {

// What a request travels through: a debugger endpoint, or a binding that runs one (net::session
// through kd::client). send() takes the bytes before it returns.
template <class Port>
concept request_port = requires(Port& p, std::span<const std::uint8_t> bytes, timestamp now) {
    { p.send(wire::packet_type::state_manipulate, bytes, bytes, now) } -> std::convertible_to<std::error_code>;
    { p.send_in_progress() } -> std::convertible_to<bool>;
    p.cancel_send(now);  // with resets on, also starts the reset handshake (as the endpoint's does)
    p.start_reset(now);
    { p.config().send_resets } -> std::convertible_to<bool>;
};

struct request_exchange_config {
    // How long an attempt (send, acknowledgement, reply) may take before the debugger
    // resynchronises and sends the request again.
    timestamp attempt_timeout = std::chrono::seconds(5);
    // Attempts after the first before the request fails.
    unsigned resyncs = 3;
};

class request_exchange {
public:
    enum class state : std::uint8_t {
        idle,            // nothing outstanding
        sending,         // in the endpoint, not yet acknowledged
        awaiting_reply,  // acknowledged, the reply not yet seen
        answered,        // the reply came (or, with no reply expected, the ACK)
        failed,          // every attempt went unanswered
    };

    explicit request_exchange(const request_exchange_config& config = {}) : config_(config) {}

    // Starts a request: `body` is the manipulate header and its data (copied). With
    // `reply_expected` false (Continue) it is answered once acknowledged, or assumed delivered
    // after attempt_timeout.
    template <request_port Port>
    std::error_code start(Port& ep, std::span<const std::uint8_t> body, bool reply_expected, timestamp now) {
        request_.assign(body.begin(), body.end());
        reply_expected_ = reply_expected;
        attempts_ = 0;
        return attempt(ep, now);
    }

    // Every event of the endpoint, after the caller has looked at it.
    void on_event(endpoint& ep, const endpoint_event& e, timestamp now) {
        if (const auto* c = std::get_if<events::send_completed>(&e)) {
            if (c->type == wire::packet_type::state_manipulate && c->result == events::send_completed::outcome::acknowledged)
                acknowledged();
        } else if (std::holds_alternative<events::peer_reset>(e)) {
            peer_reset(ep, now);
        }
    }

    // The request's packet was acknowledged.
    void acknowledged() noexcept {
        if (state_ == state::sending) state_ = reply_expected_ ? state::awaiting_reply : state::answered;
    }

    // The link was reset under the request.
    template <request_port Port>
    void peer_reset(Port& ep, timestamp now) {
        // The target's ids restarted, and a Windows-style target goes back to reporting its stop:
        // whatever it was doing with our request is gone. Ask again. (One still being sent is
        // sent again by the port itself.)
        if (state_ == state::awaiting_reply) send(ep, now);
    }

    // The caller recognised the reply.
    void answered() noexcept {
        if (state_ == state::sending || state_ == state::awaiting_reply) state_ = state::answered;
    }

    std::optional<timestamp> deadline() const noexcept {
        if (state_ == state::sending || state_ == state::awaiting_reply) return attempt_deadline_;
        return std::nullopt;
    }

    template <request_port Port>
    void on_time(Port& ep, timestamp now) {
        if (!deadline() || now < attempt_deadline_) return;
        if (!reply_expected_) {
            // A Continue that stays unacknowledged is taken as delivered: its ACK may have been
            // lost, and a running target reads nothing but a break-in. The debugger breaks in
            // next, which shows which it was.
            if (ep.send_in_progress()) ep.cancel_send(now);
            state_ = state::answered;
            return;
        }
        if (attempts_ > config_.resyncs) {
            state_ = state::failed;
            if (ep.send_in_progress()) ep.cancel_send(now);
            return;
        }
        ++resyncs_done_;
        // cancel_send() starts the handshake itself (with resets on); otherwise ask for one,
        // unless resets are off (WinDbg's resets=0): then the request simply goes again.
        if (ep.send_in_progress()) ep.cancel_send(now);
        else if (ep.config().send_resets) ep.start_reset(now);
        attempt(ep, now);
    }

    state current() const noexcept { return state_; }
    std::span<const std::uint8_t> request() const noexcept { return request_; }
    unsigned resyncs_done() const noexcept { return resyncs_done_; }

private:
    template <request_port Port>
    std::error_code attempt(Port& ep, timestamp now) {
        ++attempts_;
        attempt_deadline_ = now + config_.attempt_timeout;
        return send(ep, now);
    }

    template <request_port Port>
    std::error_code send(Port& ep, timestamp now) {
        const auto ec = ep.send(wire::packet_type::state_manipulate, request_, {}, now);
        state_ = ec ? state::failed : state::sending;
        return ec;
    }

    request_exchange_config config_;
    std::vector<std::uint8_t> request_;
    bool reply_expected_ = true;
    state state_ = state::idle;
    unsigned attempts_ = 0;
    unsigned resyncs_done_ = 0;
    timestamp attempt_deadline_{};
};

static_assert(request_port<endpoint>);

}  // namespace kdcom::kd
