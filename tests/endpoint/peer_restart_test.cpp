// A peer restarting mid-transfer, on either side: the session recovers (the reset handshake for a
// new debugger, the SYNC bit for a new target), nothing is lost or reordered, and at most the
// packet in flight at the restart arrives twice (docs/protocol.md, "Across a reset").
#include <gtest/gtest.h>

#include "kdcom/sim/world.hpp"
#include "support/session_checks.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;
using wire::packet_type;

struct restart_case {
    role who;
    bool drop_in_flight;
};

void run_restart(const restart_case& rc, std::uint64_t seed) {
    sim::random r(seed);
    sim::world_config c;
    c.seed = seed;
    c.to_target = c.to_debugger = {.packet_loss = 0.02, .corruption = 1e-5, .max_chunk = 1 + r.below(500),
                                   .delay = 200us, .jitter = 300us};
    c.debugger.implicit_ack = c.target.implicit_ack = false;
    sim::world w(c);
    std::vector<bytes> from_debugger, from_target;
    for (std::uint32_t i = 0; i < 30; ++i) {
        from_debugger.push_back(numbered_body(i, 8 + r.below(3000)));
        from_target.push_back(numbered_body(i, 8 + r.below(3000)));
        w.send(role::debugger, packet_type::state_manipulate, from_debugger.back());
        w.send(role::target, packet_type::state_change64, from_target.back());
    }
    // Let a third of the traffic through, then restart.
    ASSERT_TRUE(w.run_until([&] { return w.target().inbox.size() >= 10; }, 120s)) << "seed " << seed;
    w.restart(rc.who, rc.drop_in_flight);
    const bool done = w.run_until(
        [&] { return w.debugger().outbox.empty() && w.target().outbox.empty(); }, 600s);
    ASSERT_TRUE(done) << "seed " << seed << ": did not recover";
    w.run_idle(w.now() + 10s);
    for (const auto& [sent, received] : {std::pair(&from_debugger, &w.target().inbox),
                                         std::pair(&from_target, &w.debugger().inbox)}) {
        const auto check = check_deliveries(*sent, *received);
        ASSERT_TRUE(check.complete) << "seed " << seed << ": " << check.problem;
        ASSERT_TRUE(check.in_order_and_exact) << "seed " << seed << ": " << check.problem;
        ASSERT_LE(check.duplicates, 1u) << "seed " << seed;
    }
}

TEST(PeerRestart, ADebuggerRestartedMidTransferRecoversThroughTheResetHandshake) {
    for (std::uint64_t seed = 1; seed <= 150; ++seed) {
        run_restart({role::debugger, false}, seed);
        if (HasFatalFailure()) return;
        run_restart({role::debugger, true}, seed + 1000);
        if (HasFatalFailure()) return;
    }
}

TEST(PeerRestart, ATargetRestartedMidTransferRecoversThroughSync) {
    for (std::uint64_t seed = 1; seed <= 150; ++seed) {
        run_restart({role::target, false}, seed);
        if (HasFatalFailure()) return;
        run_restart({role::target, true}, seed + 1000);
        if (HasFatalFailure()) return;
    }
}

TEST(PeerRestart, TheNewDebuggersHandshakeIsAnsweredAndCounted) {
    sim::world w({});
    ASSERT_TRUE(w.run_until([&] { return w.debugger().peer_resets == 1; }, 5s));
    w.restart(role::debugger);
    EXPECT_EQ(w.debugger().ep->deadline(), timestamp{}) << "a new debugger starts with a handshake";
    ASSERT_TRUE(w.run_until([&] { return w.debugger().peer_resets == 2; }, 5s));
    EXPECT_FALSE(w.debugger().ep->handshake_pending());
    EXPECT_EQ(w.target().peer_resets, 2u) << "the target answered both debuggers";
}
}  // namespace
