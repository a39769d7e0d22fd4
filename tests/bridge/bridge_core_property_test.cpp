// The bridge's rules (bridge/core.hpp) in virtual time, over 1,000 seeds: a guest kernel behind the
// bridge core and a target endpoint (sim::bridged_target), and kdcom's debugger across a faulty
// line. For each seed, a noisy phase of 20 s (damaged, lost, duplicated and cut bytes; the guest
// rebooting; debuggers attaching in the middle of things), then a quiet phase: a clean line and a
// fresh debugger, which must get through a whole session (stop, GetVersion, checked reads,
// continue, break-in, read, detach) within two virtual minutes.
//
// Throughout, the contract holds: every guest call answered exactly once, nothing answered that was
// not asked, nothing answered or sent for a guest that has left, no call of a well-behaved guest
// refused (bridged_target.hpp checks these as it runs). A wedge (a bridge that never answers again
// after faults) shows up as a quiet-phase session that does not finish.
//
// KDCOM_BRIDGE_SEEDS sets the number of seeds (default 1,000).
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "kdcom/sim/bridged_target.hpp"
#include "kdcom/sim/duplex.hpp"
#include "kdcom/sim/kdcom_debugger.hpp"
#include "kdcom/sim/random.hpp"
#include "support/seed_count.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::sim;
using namespace std::chrono_literals;

faults noisy_faults(sim::random& r) {
    faults f;
    if (r.chance(0.7)) f.packet_loss = 0.002 * static_cast<double>(r.below(20));
    if (r.chance(0.5)) f.corruption = 0.0001 * static_cast<double>(r.below(5));
    if (r.chance(0.3)) f.duplication = 0.01 * static_cast<double>(r.below(5));
    if (r.chance(0.3)) f.truncation = 0.01 * static_cast<double>(r.below(3));
    if (r.chance(0.3)) f.garbage = 0.01 * static_cast<double>(r.below(3));
    if (r.chance(0.5)) f.max_chunk = 1 + r.below(200);
    f.delay = std::chrono::microseconds(r.below(2000));
    f.jitter = std::chrono::microseconds(r.below(500));
    return f;
}

struct seed_outcome {
    bool finished = false;
    std::string failure;
    std::vector<std::string> violations;
    std::size_t reboots = 0, attaches = 1;
};

seed_outcome run_seed(std::uint64_t seed) {
    sim::random r(mix_seed(seed, 0xB81D));
    bridged_target_options target_options;
    target_options.bridge.fast_path = r.chance(0.5);
    target_options.guest.takes_packets = r.chance(0.8);
    target_options.crossing = std::chrono::microseconds(1 + r.below(100));
    auto target_node = std::make_unique<bridged_target>(target_options);
    bridged_target& target = *target_node;

    auto debugger = [&](std::size_t reads, bool starts_running) {
        return std::make_unique<kdcom_debugger>(session_plan{.reads = reads, .starts_running = starts_running,
                                                             .seed = r.next()});
    };
    duplex d(debugger(20, false), std::move(target_node),
             {.to_target = noisy_faults(r), .to_debugger = noisy_faults(r), .seed = seed});

    // The noisy phase: reboots and re-attaches at random moments.
    seed_outcome out;
    const timestamp noisy_end = 20s;
    timestamp next_trouble = std::chrono::milliseconds(r.below(5000));
    while (d.now() < noisy_end) {
        d.run_until([] { return false; }, std::min(next_trouble, noisy_end));
        if (next_trouble >= noisy_end) break;
        if (r.chance(0.5)) {
            target.reboot_guest(next_trouble);
            ++out.reboots;
        } else {
            d.replace_debugger(debugger(1 + r.below(20), r.chance(0.5)));
            ++out.attaches;
        }
        next_trouble += std::chrono::milliseconds(1 + r.below(6000));
    }

    // The quiet phase: a clean line and a new debugger, which must get through its session.
    d.set_faults({}, {});
    d.replace_debugger(debugger(10, target.guest().running()));
    ++out.attaches;
    auto& last = static_cast<kdcom_debugger&>(d.debugger());
    out.finished = d.run_until([&] { return last.session().done() || last.session().failed(); }, d.now() + 120s) &&
                   last.session().done();
    if (last.session().failed()) out.failure = last.session().failure();
    out.violations = target.violations();
    // Only a reboot loses a call's answer (with the guest that made it), and only the call in
    // progress when it came.
    const auto& guest = target.guest();
    if (guest.calls() - guest.answers() > out.reboots + 1)
        out.violations.push_back("calls " + std::to_string(guest.calls()) + ", answers " + std::to_string(guest.answers()));
    return out;
}

TEST(BridgeCoreProperties, EveryCallIsAnsweredOnceAndTheBridgeNeverWedges) {
    const std::uint64_t seeds = test::seed_count("KDCOM_BRIDGE_SEEDS", 1000);
    std::size_t reboots = 0, attaches = 0, failures = 0;
    for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
        const seed_outcome o = run_seed(seed);
        reboots += o.reboots;
        attaches += o.attaches;
        EXPECT_TRUE(o.violations.empty()) << "seed " << seed << ": " << o.violations.front();
        EXPECT_TRUE(o.finished) << "seed " << seed << ": the quiet phase's session did not finish"
                                << (o.failure.empty() ? "" : ": " + o.failure);
        if (!o.finished || !o.violations.empty()) ++failures;
        if (failures > 5) break;  // enough to debug from
    }
    // The noise really happened.
    EXPECT_GT(reboots, seeds / 2);
    EXPECT_GT(attaches, seeds * 2);
    std::printf("%llu seeds: %zu guest reboots, %zu debugger attaches\n", static_cast<unsigned long long>(seeds),
                reboots, attaches);
}

}  // namespace
