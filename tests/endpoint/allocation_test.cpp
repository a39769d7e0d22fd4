// No heap allocation per packet in steady state: sends, deliveries, ACKs, timeouts, RESENDs and
// retransmissions between two endpoints, counted by a replacement operator new.
#include <gtest/gtest.h>

#include "../../bench/allocation_counter.hpp"
#include "support/endpoint_harness.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;

// Moves bytes between a debugger and a target through two reserved buffers until both are quiet.
class pump {
public:
    pump() {
        to_target_.reserve(1 << 16);
        to_debugger_.reserve(1 << 16);
    }

    // Sends one packet from the debugger; with `cut`, its first copy arrives without its trailer,
    // so the target times out on it and asks for a resend.
    void exchange(const bytes& body, bool cut) {
        cut_next_ = cut;
        (void)debugger.send(wire::packet_type::state_manipulate, body, {}, now);
        for (int round = 0; round < 20; ++round) {
            drain(debugger, to_target_);
            if (!to_target_.empty()) {
                target.receive(to_target_, now);
                drain(target, to_debugger_);
                to_target_.clear();
            }
            if (!to_debugger_.empty()) {
                debugger.receive(to_debugger_, now);
                drain(debugger, to_target_);
                to_debugger_.clear();
            }
            if (to_target_.empty() && to_debugger_.empty()) {
                if (!debugger.send_in_progress()) break;
                now += std::chrono::milliseconds(1500);  // past the target's read timeout
                target.on_time(now);
                drain(target, to_debugger_);
                debugger.on_time(now);
            }
        }
        now += std::chrono::milliseconds(1);
    }

    endpoint debugger{{.role = role::debugger, .send_resets = false}};
    endpoint target{{.role = role::target}};
    timestamp now{};
    std::size_t delivered = 0;

private:
    void drain(endpoint& ep, bytes& out) {
        while (auto e = ep.next_event()) {
            if (auto* t = std::get_if<events::transmit>(&*e)) {
                auto b = t->bytes();
                if (cut_next_ && t->kind == events::transmit::what::data_packet) {
                    b = b.first(b.size() - 1);
                    cut_next_ = false;
                }
                out.insert(out.end(), b.begin(), b.end());
            } else if (std::holds_alternative<events::packet_received>(*e)) {
                ++delivered;
            }
        }
    }

    bytes to_target_, to_debugger_;
    bool cut_next_ = false;
};

TEST(Allocation, SteadyStateTrafficAllocatesNothingPerPacket) {
    pump p;
    const bytes big(4000, 0x11), small(56, 0x22);
    for (int i = 0; i < 50; ++i) p.exchange(i % 2 ? big : small, i % 5 == 0);  // warm up
    const std::size_t delivered_before = p.delivered;
    const std::size_t before = bench::allocations.load();
    for (int i = 0; i < 2000; ++i) p.exchange(i % 2 ? big : small, i % 5 == 0);
    EXPECT_EQ(bench::allocations.load() - before, 0u);
    EXPECT_EQ(p.delivered - delivered_before, 2000u) << "every packet arrived, once";
    EXPECT_GE(p.debugger.stats().resends_received, 400u) << "the RESEND path was exercised";
}
}  // namespace
