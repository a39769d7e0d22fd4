// A deterministic simulation of a debugger endpoint and a target endpoint joined by two faulty
// links in virtual time. Tests, benchmarks and tools use it to run whole sessions without I/O:
// a seed and the fault settings fully determine what happens.
//
// Each side is an endpoint plus a minimal application: an outbox of packets sent one at a time
// (the next one when the previous send completes), an inbox of what was delivered, and a record
// of completions, resets and link changes. A receive hook lets a test make one side answer the
// other (KD's request/reply pattern).
//
//     sim::world w({.seed = 7, .to_target = {.packet_loss = 0.05}});
//     w.send(role::debugger, wire::packet_type::state_manipulate, body);
//     w.run_until([&] { return w.target().inbox.size() == 1; }, std::chrono::seconds(60));
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "kdcom/endpoint/endpoint.hpp"
#include "kdcom/sim/link.hpp"

namespace kdcom::sim {

struct world_config {
    endpoint_config debugger{.role = role::debugger};
    endpoint_config target{.role = role::target};
    faults to_target;    // the debugger-to-target link
    faults to_debugger;  // the target-to-debugger link
    std::uint64_t seed = 1;
};

struct delivered_packet {
    wire::packet_type type{};
    std::uint32_t id = 0;
    std::vector<std::uint8_t> body;
    timestamp at{};
};

struct outgoing_packet {
    wire::packet_type type{};
    std::vector<std::uint8_t> body;
};

// One end: its endpoint and what its application saw.
struct side {
    std::unique_ptr<endpoint> ep;
    std::deque<outgoing_packet> outbox;  // front: the packet being sent
    std::vector<delivered_packet> inbox;
    std::vector<events::send_completed> completions;
    std::vector<events::link_state> link_changes;
    std::size_t peer_resets = 0;
    std::size_t breakins = 0;  // break-ins the target application polled
    std::size_t restarts = 0;
    std::size_t rejected_sends = 0;  // packets the endpoint refused (too large, wrong type)
};

class world {
public:
    using receive_hook = std::function<void(world&, role, const delivered_packet&)>;

    explicit world(const world_config& config)
        : config_(config),
          to_target_(config.to_target, mix_seed(config.seed, 1)),
          to_debugger_(config.to_debugger, mix_seed(config.seed, 2)) {
        debugger_.ep = std::make_unique<endpoint>(config.debugger);
        target_.ep = std::make_unique<endpoint>(config.target);
    }

    side& debugger() { return debugger_; }
    side& target() { return target_; }
    side& at(role r) { return r == role::debugger ? debugger_ : target_; }
    link& link_into(role r) { return r == role::debugger ? to_debugger_ : to_target_; }
    timestamp now() const { return now_; }
    std::size_t max_in_flight_bytes() const { return max_in_flight_; }

    // Queues a packet for `from`'s application to send.
    void send(role from, wire::packet_type type, std::span<const std::uint8_t> body) {
        at(from).outbox.push_back({type, std::vector<std::uint8_t>(body.begin(), body.end())});
    }

    // Called after every delivery (for example to answer a request).
    void on_receive(receive_hook hook) { hook_ = std::move(hook); }

    // The debugger's user presses Ctrl+Break.
    void breakin() {
        debugger_.ep->send_breakin(now_);
        drain(role::debugger);
    }

    // Replaces `r`'s endpoint by a fresh one, as if its process restarted. Its application keeps
    // its outbox, so the packet it was sending goes out again. With `drop_in_flight`, bytes on
    // their way to it are lost (a socket reconnect); otherwise they are read by the new endpoint
    // (a pipe).
    void restart(role r, bool drop_in_flight = false) {
        side& s = at(r);
        ++s.restarts;
        s.ep = std::make_unique<endpoint>(r == role::debugger ? config_.debugger : config_.target);
        if (drop_in_flight) link_into(r).clear();
    }

    // Advances to the next thing that happens, if it happens by `limit`. Returns false if nothing
    // is scheduled before then.
    bool step(timestamp limit) {
        std::optional<timestamp> next;
        for (role r : {role::debugger, role::target}) {
            side& s = at(r);
            const bool send_due = !s.outbox.empty() && !s.ep->send_in_progress();
            next = earliest({next, s.ep->deadline(), link_into(r).next_arrival(),
                             send_due ? std::optional(now_) : std::nullopt});
        }
        if (!next || *next > limit) return false;
        now_ = std::max(now_, *next);

        for (role r : {role::debugger, role::target}) {
            while (auto chunk = link_into(r).take(now_)) {
                at(r).ep->receive(*chunk, now_);
                drain(r);
            }
        }
        for (role r : {role::debugger, role::target}) {
            if (auto d = at(r).ep->deadline(); d && *d <= now_) {
                at(r).ep->on_time(now_);
                drain(r);
            }
        }
        for (role r : {role::debugger, role::target}) start_next_send(r);
        if (target_.ep->poll_breakin()) ++target_.breakins;
        max_in_flight_ = std::max({max_in_flight_, to_target_.in_flight_bytes(), to_debugger_.in_flight_bytes()});
        return true;
    }

    // Steps until `done()` holds or virtual time passes `limit`; returns done(). Gives up after
    // `max_steps` steps too, so a livelock fails a test instead of hanging it.
    bool run_until(const std::function<bool()>& done, timestamp limit, std::size_t max_steps = 50'000'000) {
        for (std::size_t n = 0; n < max_steps && !done(); ++n)
            if (!step(limit)) break;
        return done();
    }

    // Runs until nothing is scheduled before `limit` (everything sent, no timers pending).
    void run_idle(timestamp limit) {
        while (step(limit)) {
        }
    }

private:
    void start_next_send(role r) {
        side& s = at(r);
        while (!s.outbox.empty() && !s.ep->send_in_progress()) {
            const auto& p = s.outbox.front();
            if (!s.ep->send(p.type, p.body, {}, now_)) break;
            ++s.rejected_sends;
            s.outbox.pop_front();
        }
        drain(r);
    }

    void drain(role r) {
        side& s = at(r);
        const role peer = r == role::debugger ? role::target : role::debugger;
        while (auto e = s.ep->next_event()) {
            if (auto* t = std::get_if<events::transmit>(&*e)) {
                link_into(peer).write(t->bytes(), now_);
            } else if (auto* p = std::get_if<events::packet_received>(&*e)) {
                s.inbox.push_back({p->type, p->id, std::vector<std::uint8_t>(p->body.begin(), p->body.end()), now_});
                if (hook_) hook_(*this, r, s.inbox.back());
            } else if (auto* c = std::get_if<events::send_completed>(&*e)) {
                s.completions.push_back(*c);
                if (!s.outbox.empty()) s.outbox.pop_front();
            } else if (std::holds_alternative<events::peer_reset>(*e)) {
                ++s.peer_resets;
            } else if (auto* l = std::get_if<events::link_changed>(&*e)) {
                s.link_changes.push_back(l->state);
            }
        }
    }

    world_config config_;
    link to_target_;
    link to_debugger_;
    side debugger_;
    side target_;
    timestamp now_{};
    receive_hook hook_;
    std::size_t max_in_flight_ = 0;
};

}  // namespace kdcom::sim
