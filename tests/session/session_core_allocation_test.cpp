// No heap allocation per packet through two session cores in steady state: a debugger's requests
// (some sent while another is in progress, so they wait in the core) reach a target whose
// application reads each packet in place and answers it, counted by a replacement operator new.
// (The Asio runner around the core is not counted here: see docs/benchmarks.md.)
#include <gtest/gtest.h>

#include <vector>

#include "../../bench/allocation_counter.hpp"
#include "kdcom/session/core.hpp"

namespace {
using namespace kdcom;
using namespace std::chrono_literals;
using bytes = std::vector<std::uint8_t>;

class session_rig {
public:
    session_rig() {
        line_.reserve(1 << 16);
        debugger.stream_opened(now_);
        target.stream_opened(now_);
        settle();
    }

    // `requests` requests sent back to back (all but the first wait in the core), each answered.
    void exchange(std::size_t requests, std::size_t size) {
        request_.assign(size, 0x42);
        for (std::size_t i = 0; i < requests; ++i)
            EXPECT_FALSE(debugger.send(wire::packet_type::state_manipulate, request_, {}, now_));
        settle();
        now_ += 1ms;
    }

    session::core debugger{{.role = role::debugger}, {}};
    session::core target{{.role = role::target}, {}};
    std::size_t answers = 0, acknowledged = 0;

private:
    // Runs both cores until neither has anything to say.
    void settle() {
        for (bool moved = true; moved;) {
            moved = false;
            drain(debugger);
            drain(target);
            moved |= carry(debugger, target);
            moved |= carry(target, debugger);
        }
    }

    void drain(session::core& c) {
        while (auto e = c.next_event()) {
            if (auto* f = std::get_if<session::session_events::send_finished>(&*e))
                acknowledged += f->result == session::session_events::send_finished::outcome::acknowledged;
        }
        while (c.has_received()) {
            const received_packet& p = c.received_front();
            if (&c == &target) EXPECT_FALSE(target.send(wire::packet_type::state_manipulate, p.body, {}, now_));
            else ++answers;
            c.pop_received();
            while (auto e = c.next_event()) {
                if (auto* f = std::get_if<session::session_events::send_finished>(&*e))
                    acknowledged += f->result == session::session_events::send_finished::outcome::acknowledged;
            }
        }
    }

    // Writes what `from` has into `to`; true if anything moved.
    bool carry(session::core& from, session::core& to) {
        const auto out = from.start_write();
        if (out.empty()) return false;
        line_.assign(out.begin(), out.end());
        from.finish_write();
        to.bytes_read(line_, now_);
        return true;
    }

    timestamp now_{};
    bytes request_, line_;
};

TEST(SessionCoreAllocation, RequestsQueuedAnsweredAndAcknowledgedAllocateNothingInSteadyState) {
    session_rig rig;
    for (int i = 0; i < 100; ++i) rig.exchange(3, 2100);  // warm up: every buffer at its largest
    const std::size_t answers_before = rig.answers;
    const std::size_t before = bench::allocations.load();
    std::size_t requests = 0;
    for (std::size_t i = 0; i < 2000; ++i) {
        rig.exchange(1 + i % 3, 24 + (i * 37) % 2000);
        requests += 1 + i % 3;
    }
    const std::size_t allocated = bench::allocations.load() - before;
    EXPECT_EQ(rig.answers - answers_before, requests) << "every request answered";
    EXPECT_EQ(allocated, 0u) << "heap allocations in " << requests << " requests and their answers";
}

}  // namespace
