// kdcom with its default settings paired with each model of another KDCOM implementation
// (sim/peers/), and one run of a pairing: two debuggers attaching one after the other to the same
// target over one faulty line, in virtual time. The interop matrix test and the interop fuzzer
// run these.
//
// A run reports whether it finished, a wrong byte if one was ever taken (never acceptable), and,
// for a run that did not finish, the flaw of the peer's own design that the peer model shows
// stopped it (kdd misframed a damaged header; pykdclient lost its one RESET, request or break-in;
// a debugger without a reply timeout sent a request the target could not use). A run that did not
// finish with no such reason is kdcom's fault.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kdcom/sim/duplex.hpp"
#include "kdcom/sim/kdcom_debugger.hpp"
#include "kdcom/sim/kdcom_target.hpp"
#include "kdcom/sim/peers/kdd_target.hpp"
#include "kdcom/sim/peers/kddll_target.hpp"
#include "kdcom/sim/peers/model_debugger.hpp"

namespace kdcom::sim {

struct interop_result {
    bool completed = false;
    std::string damage;          // a wrong or short reply was taken
    std::string gave_up;         // the debugger gave a request up
    std::string stopped_by_peer; // why a run that did not finish could not, by the peer's design
    std::uint64_t retransmissions = 0, resends = 0, resyncs = 0, stray_replies = 0;
    std::size_t most_endpoint_memory = 0;  // the kdcom side's, at the end of each attach
};

struct interop_plan {
    std::size_t first_reads = 1000;  // reads by the first debugger, then continue, break-in, detach
    std::size_t second_reads = 20;   // by the second, which breaks in on the running target
    timestamp limit = std::chrono::minutes(30);  // virtual time per attach
};

struct pairing {
    std::string name;
    std::function<interop_result(const duplex_config&, const interop_plan&)> run;
};

namespace detail {

// Two attaches over one duplex; `read(debugger, result)` takes each debugger's figures once its
// attach has ended, and `at_end(result)` the target's, while it still exists.
template <class Debugger>
interop_result two_attaches(const std::function<std::unique_ptr<Debugger>(const session_plan&)>& make_debugger,
                            std::unique_ptr<node> target, const duplex_config& link_config, const interop_plan& plan,
                            const std::function<void(const Debugger&, interop_result&)>& read,
                            const std::function<void(interop_result&)>& at_end) {
    interop_result r;
    const session_plan plans[] = {
        {.reads = plan.first_reads, .seed = link_config.seed},
        {.reads = plan.second_reads, .starts_running = true, .break_in_and_continue = false, .seed = link_config.seed + 1'000'000},
    };
    auto first = make_debugger(plans[0]);
    Debugger* d = first.get();
    duplex link(std::move(first), std::move(target), link_config);
    auto finish = [&] {  // before `link`, and the target in it, goes
        at_end(r);
        return r;
    };
    for (int attach = 0; attach < 2; ++attach) {
        if (attach == 1) {
            auto second = make_debugger(plans[1]);
            d = second.get();
            link.replace_debugger(std::move(second));
        }
        link.run_until([&] { return d->session().done() || d->session().failed(); }, link.now() + plan.limit);
        read(*d, r);
        r.stray_replies += d->session().stray_replies();
        if (d->session().failed()) {
            (d->session().data_damaged() ? r.damage : r.gave_up) = d->session().failure();
            return finish();
        }
        if (!d->session().done()) return finish();
    }
    r.completed = true;
    return finish();
}

// kdcom's debugger against a target model; `explain(target)` names the target's own flaw, if it
// shows one, for a run that did not finish.
template <class Target>
interop_result kdcom_debugger_against(std::unique_ptr<Target> target, const std::function<std::string(const Target&)>& explain,
                                      const duplex_config& link_config, const interop_plan& plan) {
    const Target* t = target.get();
    return two_attaches<kdcom_debugger>(
        [](const session_plan& p) { return std::make_unique<kdcom_debugger>(p); }, std::move(target), link_config, plan,
        [](const kdcom_debugger& d, interop_result& out) {
            out.retransmissions += d.ep().stats().retransmissions;
            out.resends += d.ep().stats().resends_sent + d.ep().stats().resends_received;
            out.resyncs += d.resyncs();
            out.most_endpoint_memory = std::max(out.most_endpoint_memory, d.ep().memory_in_use());
        },
        [&](interop_result& out) {
            if (!out.completed) out.stopped_by_peer = explain(*t);
        });
}

// A model of another debugger against kdcom's target.
inline interop_result model_debugger_against_kdcom(const peers::debugger_behaviour& b, const duplex_config& link_config,
                                                   const interop_plan& plan) {
    auto target = std::make_unique<kdcom_target>();
    const kdcom_target* t = target.get();
    std::string stuck;
    return two_attaches<peers::model_debugger>(
        [&b](const session_plan& p) { return std::make_unique<peers::model_debugger>(b, p); }, std::move(target),
        link_config, plan,
        [&stuck](const peers::model_debugger& d, interop_result& out) {
            out.retransmissions += d.retransmissions();
            stuck = d.stuck_by_design();
        },
        [&](interop_result& out) {
            if (!out.completed && !stuck.empty())
                out.stopped_by_peer = "the debugger is stuck by design: " + stuck;
            else if (!out.completed && t->unusable_packets() > 0)
                out.stopped_by_peer = "a PacketType damaged into another valid type passes the checksum (which covers "
                                      "only the body): the target acknowledged a request it could not use, and this "
                                      "debugger has no reply timeout";
            out.retransmissions += t->ep().stats().retransmissions;
            out.resends += t->ep().stats().resends_sent + t->ep().stats().resends_received;
            out.resyncs += t->ep().stats().resets_received;
            out.most_endpoint_memory = std::max(out.most_endpoint_memory, t->ep().memory_in_use());
        });
}

inline std::string kdd_misframed(const peers::kdd_target& kdd) {
    if (kdd.misframed() == 0) return {};
    return "kdd trusts ByteCount, even a control packet's, and has no read timeout: a damaged or false header "
           "swallowed what followed it";
}

}  // namespace detail

// Every pairing: kdcom's debugger against each target model, each debugger model against
// kdcom's target.
inline std::vector<pairing> all_pairings() {
    using detail::kdcom_debugger_against;
    auto kddll = [](peers::kddll_behaviour b) {
        return [b](const duplex_config& c, const interop_plan& p) {
            return kdcom_debugger_against<peers::kddll_target>(std::make_unique<peers::kddll_target>(b),
                                                               [](const peers::kddll_target&) { return std::string(); }, c, p);
        };
    };
    auto model = [](peers::debugger_behaviour b) {
        return [b](const duplex_config& c, const interop_plan& p) { return detail::model_debugger_against_kdcom(b, c, p); };
    };
    return {
        {"KdcomDebugger_WindowsKdcom", kddll(peers::windows_kdcom())},
        {"KdcomDebugger_ReactosKdcom", kddll(peers::reactos_kdcom())},
        {"KdcomDebugger_ReactosKddllOld", kddll(peers::reactos_kddll_old())},
        {"KdcomDebugger_XenKdd",
         [](const duplex_config& c, const interop_plan& p) {
             return kdcom_debugger_against<peers::kdd_target>(std::make_unique<peers::kdd_target>(), detail::kdd_misframed, c, p);
         }},
        {"WinDbg_KdcomTarget", model(peers::windbg())},
        {"WinDbgResetsOff_KdcomTarget", model(peers::windbg_resets_off())},
        {"Pykdclient_KdcomTarget", model(peers::pykdclient())},
        {"Radare2_KdcomTarget", model(peers::radare2())},
    };
}

}  // namespace kdcom::sim
