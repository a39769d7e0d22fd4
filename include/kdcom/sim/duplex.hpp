// Two nodes joined by two faulty links in virtual time: a debugger and a target of any kind
// (kdcom's endpoint with an application, or a model of another program). Deterministic: the seed
// and the faults fully decide what happens.
//
//     sim::duplex d(std::move(debugger), std::move(target), {.seed = 3, .to_target = {.packet_loss = 0.01}});
//     d.run_until([&] { return done(); }, std::chrono::minutes(10));
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "kdcom/sim/link.hpp"
#include "kdcom/sim/node.hpp"

namespace kdcom::sim {

struct duplex_config {
    faults to_target;    // written by the debugger
    faults to_debugger;  // written by the target
    std::uint64_t seed = 1;
};

class duplex {
public:
    duplex(std::unique_ptr<node> debugger, std::unique_ptr<node> target, const duplex_config& config)
        : debugger_(std::move(debugger)),
          target_(std::move(target)),
          to_target_(config.to_target, mix_seed(config.seed, 1)),
          to_debugger_(config.to_debugger, mix_seed(config.seed, 2)) {
        target_->start(now_);
        debugger_->start(now_);
        flush();
    }

    node& debugger() { return *debugger_; }
    node& target() { return *target_; }
    timestamp now() const { return now_; }

    // A new debugger on the same line (the old one detached, or its process restarted). What was
    // on its way to the old one is lost with it; what the old one sent still reaches the target.
    void replace_debugger(std::unique_ptr<node> debugger) {
        debugger_ = std::move(debugger);
        to_debugger_.clear();
        debugger_->start(now_);
        flush();
    }

    // New faults for what each side writes from now on (a test's quiet phase, for example).
    void set_faults(const faults& to_target, const faults& to_debugger) {
        to_target_.set_faults(to_target);
        to_debugger_.set_faults(to_debugger);
    }

    // Advances to the next thing that happens, if it happens by `limit`; false if nothing does.
    bool step(timestamp limit) {
        const auto next = earliest({debugger_->deadline(), target_->deadline(), to_debugger_.next_arrival(),
                                    to_target_.next_arrival()});
        if (!next || *next > limit) return false;
        now_ = std::max(now_, *next);
        while (auto chunk = to_target_.take(now_)) {
            target_->receive(*chunk, now_);
            flush();
        }
        while (auto chunk = to_debugger_.take(now_)) {
            debugger_->receive(*chunk, now_);
            flush();
        }
        for (node* n : {target_.get(), debugger_.get()}) {
            if (auto d = n->deadline(); d && *d <= now_) {
                n->on_time(now_);
                flush();
            }
        }
        return true;
    }

    // Steps until `done()` holds or virtual time passes `limit`; returns done(). Also stops after
    // `max_steps`, so a livelock fails a test instead of hanging it.
    bool run_until(const std::function<bool()>& done, timestamp limit, std::size_t max_steps = 20'000'000) {
        for (std::size_t n = 0; n < max_steps && !done(); ++n)
            if (!step(limit)) break;
        return done();
    }

    // Puts what the nodes wrote on the line. step() does it after each input; call it after making
    // a node write from outside (an application's send in a test), or the bytes wait for the next
    // step's input.
    void flush() {
        for (auto& w : debugger_->take_writes()) to_target_.write(w, now_);
        for (auto& w : target_->take_writes()) to_debugger_.write(w, now_);
    }

private:

    std::unique_ptr<node> debugger_;
    std::unique_ptr<node> target_;
    link to_target_;
    link to_debugger_;
    timestamp now_{};
};

}  // namespace kdcom::sim
