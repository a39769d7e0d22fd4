// kdcom as a target, as a VMM plugin or a simulated kernel would use it with default settings: a
// target endpoint carrying a simulated kernel (simulated_kernel.hpp). The kernel reports a stop,
// answers requests while stopped, prints once when it resumes, polls for break-ins while it runs,
// and, like Windows, reports its stop again after a RESET that finds it waiting for a request.
// Used to test kdcom's target side against models of other debuggers (sim/peers/).
#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <vector>

#include "kdcom/endpoint/endpoint.hpp"
#include "kdcom/sim/node.hpp"
#include "kdcom/sim/simulated_kernel.hpp"

namespace kdcom::sim {

struct kdcom_target_options {
    endpoint_config endpoint{.role = role::target};
    timestamp poll_interval = std::chrono::milliseconds(10);  // break-in polls while running
    bool boots_stopped = true;                                 // reports a stop at start
};

class kdcom_target final : public node {
public:
    explicit kdcom_target(const kdcom_target_options& options = {}, simulated_memory memory = simulated_memory())
        : options_(options), ep_(options.endpoint), memory_(std::move(memory)) {}

    void start(timestamp now) override {
        ep_.on_time(now);
        if (options_.boots_stopped) stop(now);
        else resume(now);
        pump(now);
    }

    void receive(std::span<const std::uint8_t> bytes, timestamp now) override {
        ep_.receive(bytes, now);
        pump(now);
    }

    void on_time(timestamp now) override {
        if (auto d = ep_.deadline(); d && *d <= now) ep_.on_time(now);
        if (running_ && now >= next_poll_) {
            next_poll_ = now + options_.poll_interval;
            if (ep_.poll_breakin()) stop(now);
        }
        pump(now);
    }

    std::optional<timestamp> deadline() const override {
        std::optional<timestamp> d = ep_.deadline();
        if (running_ && (!d || next_poll_ < *d)) d = next_poll_;
        return d;
    }

    const endpoint& ep() const noexcept { return ep_; }
    bool running() const noexcept { return running_; }
    std::size_t requests_answered() const noexcept { return requests_answered_; }
    std::size_t stops_reported() const noexcept { return stops_reported_; }
    // Packets the kernel could not use: a request while it runs, or another type while it waits
    // for one (a PacketType damaged on the way into another valid type passes the checksum).
    std::size_t unusable_packets() const noexcept { return unusable_packets_; }

private:
    void stop(timestamp) {
        running_ = false;
        ep_.poll_breakin();  // a break-in that came before this stop is served by it
        queue(wire::packet_type::state_change64, stop_report());
        ++stops_reported_;
    }

    void resume(timestamp now) {
        running_ = true;
        next_poll_ = now + options_.poll_interval;
        queue(wire::packet_type::debug_io, print_message("simulated kernel: running\n"));
    }

    void queue(wire::packet_type type, std::vector<std::uint8_t> body) { outbox_.push_back({type, std::move(body)}); }

    void pump(timestamp now) {
        for (;;) {
            while (auto e = ep_.next_event()) {
                if (const auto* t = std::get_if<events::transmit>(&*e)) {
                    write(t->bytes());
                } else if (const auto* p = std::get_if<events::packet_received>(&*e)) {
                    if (running_ || p->type != wire::packet_type::state_manipulate) {
                        ++unusable_packets_;  // acknowledged, but nothing the kernel waits for
                        continue;
                    }
                    auto answer = answer_request(p->body, memory_);
                    ++requests_answered_;
                    if (answer.reply) queue(wire::packet_type::state_manipulate, std::move(*answer.reply));
                    if (answer.resume) resume(now);
                } else if (std::get_if<events::send_completed>(&*e)) {
                    if (!outbox_.empty()) outbox_.pop_front();
                } else if (std::holds_alternative<events::peer_reset>(*e)) {
                    // Windows' wait loop gets KDP_PACKET_RESEND and reports the stop again.
                    if (!running_ && outbox_.empty() && !ep_.send_in_progress()) stop(now);
                }
            }
            if (outbox_.empty() || ep_.send_in_progress()) return;
            const auto& next = outbox_.front();
            if (ep_.send(next.type, next.body, {}, now)) outbox_.pop_front();  // refused: never sent
        }
    }

    struct outgoing {
        wire::packet_type type;
        std::vector<std::uint8_t> body;
    };

    kdcom_target_options options_;
    endpoint ep_;
    simulated_memory memory_;
    std::deque<outgoing> outbox_;
    bool running_ = false;
    timestamp next_poll_{};
    std::size_t requests_answered_ = 0, stops_reported_ = 0, unusable_packets_ = 0;
};

}  // namespace kdcom::sim
