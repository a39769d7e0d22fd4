// kdcom as a debugger, as a library user would build one with default settings: a debugger
// endpoint, requests sent one at a time through kd::request_exchange (reply timeouts that
// resynchronise), break-ins repeated while a running target does not stop, and a
// debugging_session saying what to ask. Used to test kdcom's debugger side against models of
// other targets (sim/peers/) in virtual time.
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "kdcom/endpoint/endpoint.hpp"
#include "kdcom/kd/request_exchange.hpp"
#include "kdcom/sim/debugging_session.hpp"
#include "kdcom/sim/node.hpp"

namespace kdcom::sim {

struct kdcom_debugger_options {
    endpoint_config endpoint{.role = role::debugger};
    kd::request_exchange_config exchange;
    // While a stop is awaited: a break-in every `breakin_interval` once one is wanted, and a
    // reset handshake every `stop_timeout` (a stopped target answers it by reporting its stop
    // again; a running one needs the break-in).
    timestamp breakin_interval = std::chrono::seconds(1);
    timestamp stop_timeout = std::chrono::seconds(3);
};

class kdcom_debugger final : public node {
public:
    explicit kdcom_debugger(const session_plan& plan, const kdcom_debugger_options& options = {})
        : options_(options), ep_(options.endpoint), session_(plan), exchange_(options.exchange) {}

    void start(timestamp now) override {
        ep_.on_time(now);
        stop_wait_began_ = now;
        pump(now);
    }

    void receive(std::span<const std::uint8_t> bytes, timestamp now) override {
        ep_.receive(bytes, now);
        pump(now);
    }

    void on_time(timestamp now) override {
        if (auto d = ep_.deadline(); d && *d <= now) ep_.on_time(now);
        if (auto d = exchange_.deadline(); d && *d <= now) {
            exchange_.on_time(ep_, now);
            if (exchange_.current() == kd::request_exchange::state::failed)
                session_.request_failed("no reply after " + std::to_string(exchange_.resyncs_done()) + " resynchronisations");
        }
        if (session_.waiting_for_stop()) {
            if (next_breakin_ && now >= *next_breakin_) break_in(now);
            if (now >= stop_wait_began_ + options_.stop_timeout) {
                stop_wait_began_ = now;
                if (ep_.config().send_resets) {
                    ep_.start_reset(now);
                    ++stop_resyncs_;
                }
                if (!next_breakin_) break_in(now);  // it may be running after all
            }
        }
        pump(now);
    }

    std::optional<timestamp> deadline() const override {
        if (!session_.waiting_for_stop()) return earliest({ep_.deadline(), exchange_.deadline()});
        return earliest({ep_.deadline(), exchange_.deadline(), next_breakin_, stop_wait_began_ + options_.stop_timeout});
    }

    const debugging_session& session() const noexcept { return session_; }
    const endpoint& ep() const noexcept { return ep_; }
    // Reset handshakes started because a reply or a stop did not come.
    unsigned resyncs() const noexcept { return exchange_resyncs_ + exchange_.resyncs_done() + stop_resyncs_; }

private:
    void break_in(timestamp now) {
        ep_.send_breakin(now);
        session_.breakin_sent();
        next_breakin_ = now + options_.breakin_interval;
    }

    // Drains the endpoint, feeding the session and the exchange, and starts the session's next
    // request; again until nothing new happens.
    void pump(timestamp now) {
        for (;;) {
            while (auto e = ep_.next_event()) {
                if (const auto* t = std::get_if<events::transmit>(&*e)) {
                    write(t->bytes());
                    continue;
                }
                exchange_.on_event(ep_, *e, now);
                if (const auto* p = std::get_if<events::packet_received>(&*e)) {
                    const bool was_waiting = session_.waiting_for_stop();
                    if (session_.on_packet(p->type, p->body)) exchange_.answered();
                    if (was_waiting && !session_.waiting_for_stop()) next_breakin_.reset();
                }
                if (exchange_.current() == kd::request_exchange::state::answered &&
                    started_ == session_.requests_issued() && !session_.reply_expected())
                    session_.on_request_delivered();
            }
            if (session_.waiting_for_stop() && session_.wants_breakin() && !next_breakin_) {
                stop_wait_began_ = now;
                break_in(now);
            }
            if (!session_.request() || session_.requests_issued() == started_) return;
            if (exchange_.current() == kd::request_exchange::state::answered ||
                exchange_.current() == kd::request_exchange::state::idle) {
                exchange_resyncs_ += exchange_.resyncs_done();
                exchange_ = kd::request_exchange(options_.exchange);
            }
            started_ = session_.requests_issued();
            if (exchange_.start(ep_, *session_.request(), session_.reply_expected(), now))
                session_.request_failed("the endpoint refused the request");
            if (!session_.waiting_for_stop()) stop_wait_began_ = now;
        }
    }

    kdcom_debugger_options options_;
    endpoint ep_;
    debugging_session session_;
    kd::request_exchange exchange_;
    std::size_t started_ = 0;
    std::optional<timestamp> next_breakin_;
    timestamp stop_wait_began_{};
    unsigned exchange_resyncs_ = 0;
    unsigned stop_resyncs_ = 0;
};

}  // namespace kdcom::sim
