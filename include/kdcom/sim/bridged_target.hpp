// The VMM bridge in virtual time: a guest kernel (guest_kernel.hpp) whose calls cross to the host
// as KD PDUs, the bridge's rules (bridge/core.hpp) and a target endpoint toward the debugger. This
// is what kdcom-bridge runs with Asio, shared memory and a real guest, as a node any simulated
// debugger can be joined to (sim::duplex). Crossings take `crossing` each way; the guest can
// reboot at any moment (its calls and their answers in flight are lost, as with a real reset).
//
// It checks the bridge's contract as it goes, into violations(): every guest call answered exactly
// once (the guest kernel judges that), nothing answered to a guest that has left, every call the
// guest kernel makes accepted, nothing sent to the debugger for a guest that has left.
#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "kdcom/bridge/core.hpp"
#include "kdcom/endpoint/endpoint.hpp"
#include "kdcom/sim/guest_kernel.hpp"
#include "kdcom/sim/node.hpp"

namespace kdcom::sim {

struct bridged_target_options {
    endpoint_config endpoint{.role = role::target};
    bridge::core_config bridge{.fast_path = true};
    guest_kernel_options guest;
    timestamp crossing = std::chrono::microseconds(20);   // guest to host, or back
    timestamp boot_time = std::chrono::milliseconds(50);  // from a reboot to the guest's attach
    std::size_t max_message = 8192;                       // the guest's largest message
};

class bridged_target final : public node {
public:
    explicit bridged_target(const bridged_target_options& options = {})
        : options_(options), ep_(options.endpoint), core_(options.bridge), guest_(options.guest) {}

    void start(timestamp now) override {
        ep_.on_time(now);
        attach_at_ = now;
        on_time(now);
    }

    void receive(std::span<const std::uint8_t> bytes, timestamp now) override {
        ep_.receive(bytes, now);
        pump(now);
    }

    void on_time(timestamp now) override {
        if (auto d = ep_.deadline(); d && *d <= now) ep_.on_time(now);
        if (auto d = core_.deadline(); d && *d <= now) core_.on_time(now);
        if (attach_at_ && *attach_at_ <= now) {
            attach_at_.reset();
            core_.guest_attached(options_.max_message);
            guest_.boot(now);
        }
        while (!to_host_.empty() && to_host_.front().at <= now) {
            shm::kd_pdu call;
            const auto message = std::move(to_host_.front().message);
            to_host_.pop_front();
            if (shm::decode_kd_pdu(message, call)) violation("the guest kernel's call does not decode");
            else if (auto e = core_.guest_call(call, now)) violation("a well-formed guest call refused: " + e.message());
            pump(now);
        }
        while (!to_guest_.empty() && to_guest_.front().at <= now) {
            shm::kd_pdu answer;
            const auto message = std::move(to_guest_.front().message);
            to_guest_.pop_front();
            if (shm::decode_kd_pdu(message, answer)) violation("an answer that does not decode");
            else guest_.on_answer(answer, now);
        }
        if (auto call = guest_.take_call(now)) to_host_.push_back({now + options_.crossing, encode(*call)});
        pump(now);
    }

    std::optional<timestamp> deadline() const override {
        return earliest({ep_.deadline(), core_.deadline(), attach_at_, guest_.deadline(),
                         to_host_.empty() ? std::nullopt : std::optional(to_host_.front().at),
                         to_guest_.empty() ? std::nullopt : std::optional(to_guest_.front().at)});
    }

    // The guest resets: it leaves now, and attaches again (and boots) after boot_time.
    void reboot_guest(timestamp now) {
        if (attach_at_) return;  // already booting
        core_.guest_detached(false);
        guest_.power_off();
        to_host_.clear();
        to_guest_.clear();
        attach_at_ = now + options_.boot_time;
        pump(now);
    }

    const guest_kernel& guest() const noexcept { return guest_; }
    const bridge::core& bridge() const noexcept { return core_; }
    const endpoint& ep() const noexcept { return ep_; }
    // The guest kernel's findings and the bridge's, together.
    std::vector<std::string> violations() const {
        std::vector<std::string> all = guest_.violations();
        all.insert(all.end(), violations_.begin(), violations_.end());
        return all;
    }

private:
    struct message_in_flight {
        timestamp at;
        std::vector<std::uint8_t> message;
    };
    struct queued_send {
        wire::packet_type type;
        std::vector<std::uint8_t> header, data;
        bridge::send_purpose purpose;
        std::uint64_t id;
    };

    static std::vector<std::uint8_t> encode(const shm::kd_pdu& p) {
        std::vector<std::uint8_t> message(shm::kd_pdu_size(p));
        std::error_code ec;
        shm::encode_kd_pdu(p, message, ec);
        return message;
    }

    // Drains the endpoint and the core into each other until neither has anything new, then ends
    // the turn (everything that came in one read has been handled) and goes on if that did more.
    void pump(timestamp now) {
        for (bool turn_ended = false;;) {
            drain_endpoint(now);
            drain_core(now);
            if (start_next_send(now)) continue;
            if (turn_ended || !core_.waits_for_turn_end()) return;
            turn_ended = true;  // once: a core that still waits after it is wedged, for the tests to see
            core_.end_of_turn();
            drain_core(now);
        }
    }

    void drain_endpoint(timestamp now) {
        while (auto e = ep_.next_event()) {
            if (const auto* t = std::get_if<events::transmit>(&*e)) {
                write(t->bytes());
            } else if (const auto* p = std::get_if<events::packet_received>(&*e)) {
                core_.debugger_packet(p->type, p->body);
                drain_core(now);
            } else if (const auto* c = std::get_if<events::send_completed>(&*e)) {
                if (sending_) {
                    const queued_send s = std::move(*sending_);
                    sending_.reset();
                    if (s.purpose == bridge::send_purpose::guest && c->result != events::send_completed::outcome::cancelled)
                        core_.guest_send_finished(s.id, c->result == events::send_completed::outcome::acknowledged);
                    drain_core(now);
                }
            } else if (std::holds_alternative<events::peer_reset>(*e)) {
                core_.debugger_reset(!ep_.send_in_progress());
                drain_core(now);
            }
        }
    }

    void drain_core(timestamp now) {
        while (auto e = core_.next_event()) {
            if (const auto* a = std::get_if<bridge::bridge_events::answer_guest>(&*e)) {
                if (!core_.guest_attached()) violation("an answer to a guest that has left");
                to_guest_.push_back({now + options_.crossing, encode(a->pdu)});
            } else if (const auto* s = std::get_if<bridge::bridge_events::send_to_debugger>(&*e)) {
                if (s->purpose == bridge::send_purpose::guest && !core_.guest_attached())
                    violation("a send for a guest that has left");
                sends_.push_back({s->type, {s->header.begin(), s->header.end()}, {s->data.begin(), s->data.end()},
                                  s->purpose, s->id});
            } else if (const auto* c = std::get_if<bridge::bridge_events::cancel_guest_send>(&*e)) {
                std::erase_if(sends_, [&](const queued_send& q) { return q.purpose == bridge::send_purpose::guest && q.id == c->id; });
                if (sending_ && sending_->purpose == bridge::send_purpose::guest && sending_->id == c->id) ep_.cancel_send(now);
            } else if (std::holds_alternative<bridge::bridge_events::poll_breakin>(*e)) {
                core_.breakin_polled(ep_.poll_breakin());
            } else if (const auto* r = std::get_if<bridge::bridge_events::read_guest_memory>(&*e)) {
                for (std::size_t i = 0; i < r->into.size(); ++i) r->into[i] = memory_byte(r->address + i);
                core_.guest_memory_read(r->into.size());
            }
        }
    }

    // Starts the next queued send if the endpoint is free; true if it did.
    bool start_next_send(timestamp now) {
        while (!sending_ && !sends_.empty()) {
            queued_send s = std::move(sends_.front());
            sends_.pop_front();
            if (!ep_.send(s.type, s.header, s.data, now)) {
                sending_ = std::move(s);
                return true;
            }
            if (s.purpose == bridge::send_purpose::guest) core_.guest_send_finished(s.id, false);  // refused
            drain_core(now);
        }
        return false;
    }

    void violation(std::string what) { violations_.push_back(std::move(what)); }

    bridged_target_options options_;
    endpoint ep_;
    bridge::core core_;
    guest_kernel guest_;
    std::optional<timestamp> attach_at_;
    std::deque<message_in_flight> to_host_, to_guest_;
    std::deque<queued_send> sends_;
    std::optional<queued_send> sending_;
    std::vector<std::string> violations_;
};

}  // namespace kdcom::sim
