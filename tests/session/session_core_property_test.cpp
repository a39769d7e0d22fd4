// The session's rules over many seeds in virtual time: a debugger and a target session, each with
// small queue bounds and an application that sometimes leaves packets waiting, sending to each
// other across a line that loses, damages, duplicates, cuts and delays bytes. For every seed:
// every packet accepted on one side is taken on the other exactly once, in order and intact;
// every send ends once, acknowledged; neither queue ever passes its bound.
//
// KDCOM_SESSION_SEEDS sets the number of seeds (default 1,000, about a second).
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "kdcom/sim/duplex.hpp"
#include "kdcom/sim/random.hpp"
#include "kdcom/sim/session_node.hpp"
#include "support/seed_count.hpp"
#include "support/session_checks.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;
using wire::packet_type;

constexpr std::size_t per_side = 30;

sim::faults line_faults(sim::random& r) {
    sim::faults f;
    f.delay = std::chrono::microseconds(50 + r.below(2000));
    if (r.chance(0.7)) f.packet_loss = 0.01 * static_cast<double>(r.below(8));
    // Damage that KDCOM's checksum (a byte sum) always catches: one byte per write. Bytes changed
    // at random may cancel out in the sum, and no implementation can tell.
    if (r.chance(0.5)) f.damage = 0.01 * static_cast<double>(r.below(5));
    if (r.chance(0.3)) f.duplication = 0.02 * static_cast<double>(r.below(5));
    if (r.chance(0.3)) f.truncation = 0.02 * static_cast<double>(r.below(3));
    if (r.chance(0.3)) f.garbage = 0.01 * static_cast<double>(r.below(3));
    return f;
}

session::options small_bounds(sim::random& r) {
    session::options o;
    o.receive_queue_limit = 1 + r.below(4);
    o.write_queue_limit = 2048 + r.below(8192);
    if (r.chance(0.5)) o.ack_delay = std::chrono::milliseconds(r.below(50));
    return o;
}

struct side {
    sim::session_node* node = nullptr;
    std::vector<bytes> sent;  // bodies accepted, in order
};

std::string check_seed(std::uint64_t seed) {
    sim::random r(seed);
    // Independent streams both ways, not requests and answers: no implicit acknowledgement.
    auto d = std::make_unique<sim::session_node>(endpoint_config{.role = role::debugger, .implicit_ack = false}, small_bounds(r));
    auto t = std::make_unique<sim::session_node>(endpoint_config{.role = role::target, .implicit_ack = false}, small_bounds(r));
    side debugger{d.get(), {}}, target{t.get(), {}};
    for (side* s : {&debugger, &target}) s->node->takes_packets = r.chance(0.5);
    sim::duplex line(std::move(d), std::move(t), {.to_target = line_faults(r), .to_debugger = line_faults(r), .seed = seed});

    const auto limit = 600s;
    for (int turn = 0; turn < 200'000 && line.now() < limit; ++turn) {
        const bool all_sent = debugger.sent.size() == per_side && target.sent.size() == per_side;
        const bool all_taken = debugger.node->taken().size() == per_side && target.node->taken().size() == per_side;
        const bool all_finished = debugger.node->finished().size() == per_side && target.node->finished().size() == per_side;
        if (all_sent && all_taken && all_finished) break;
        for (side* s : {&debugger, &target}) {
            if (s->sent.size() < per_side && r.chance(0.3)) {
                s->sent.push_back(numbered_body(static_cast<std::uint32_t>(s->sent.size()), 8 + r.below(3000)));
                const auto type = s == &debugger ? packet_type::state_manipulate : packet_type::state_change64;
                if (const auto ec = s->node->send(type, s->sent.back()))
                    return "seed " + std::to_string(seed) + ": a send was refused: " + ec.message();
            }
            if (!s->node->takes_packets && r.chance(0.3)) s->node->take_one();
            const auto& c = s->node->core();
            if (c.bytes_unwritten() > std::max(c.settings().write_queue_limit, wire::data_packet_size(wire::default_max_body)))
                return "seed " + std::to_string(seed) + ": the write queue passed its bound";
        }
        line.flush();
        if (!line.step(line.now() + std::chrono::milliseconds(1 + r.below(200)))) {
            // Nothing due soon: let virtual time pass to the next thing that happens.
            line.step(limit);
        }
    }
    for (const auto& [from, to] : {std::pair{&debugger, &target}, std::pair{&target, &debugger}}) {
        std::vector<bytes> taken;
        for (const auto& p : to->node->taken()) taken.push_back(p.body);
        if (taken != from->sent)
            return "seed " + std::to_string(seed) + ": " + std::to_string(taken.size()) + " of " +
                   std::to_string(from->sent.size()) + " packets taken, or not in order, or not intact";
        const std::vector<sim::session_node::outcome> acknowledged(from->sent.size(), sim::session_node::outcome::acknowledged);
        if (from->node->finished() != acknowledged)
            return "seed " + std::to_string(seed) + ": " + std::to_string(from->node->finished().size()) +
                   " sends ended, not all acknowledged";
    }
    return {};
}

TEST(SessionCoreProperties, EveryAcceptedPacketIsTakenOnceInOrderWithinTheQueueBounds) {
    const std::uint64_t seeds = seed_count("KDCOM_SESSION_SEEDS", 1000);
    std::size_t failures = 0;
    for (std::uint64_t seed = 1; seed <= seeds && failures < 5; ++seed) {
        const std::string problem = check_seed(seed);
        if (!problem.empty()) ++failures;
        EXPECT_TRUE(problem.empty()) << problem;
    }
}

}  // namespace
