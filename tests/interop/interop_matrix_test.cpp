// kdcom with its DEFAULT settings against models of the KDCOM implementations nobody here wrote
// (include/kdcom/sim/peers/, paired in include/kdcom/sim/interop.hpp), in virtual time, on a clean
// link and under faults.
//
// Each pairing runs whole sessions: the reset handshake, the first stop, GetVersion, 1,000 reads
// with every byte checked, continue, break-in, a read at the new stop, detach; then a second
// debugger attaches to the running target on the same line, breaks in, reads and detaches.
// A session must finish within a bounded virtual time; a session that delivers a wrong byte fails
// whatever the peer. A session that does not finish passes only if the run itself shows that a
// flaw of the peer's own design stopped it (the peer model reports it: kdd misframed a damaged
// header, pykdclient's one RESET, request or break-in was lost, a debugger without a reply timeout
// sent a request the target could not use); the test counts and prints those separately.
//
// KDCOM_INTEROP_SEEDS sets the number of seeds per pairing and fault (default 200).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

#include "kdcom/sim/interop.hpp"
#include "support/seed_count.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::sim;
using namespace std::chrono_literals;

// ---- Faults --------------------------------------------------------------------------------

struct fault_case {
    const char* name;
    faults f;
};

faults with_latency(faults f) {
    f.delay = 200us;
    f.jitter = 100us;
    return f;
}

// "1%" is per write: a packet, an ACK, a break-in byte.
const fault_case fault_cases[] = {
    {"clean", with_latency({})},
    {"loss", with_latency({.packet_loss = 0.01})},
    {"damage", with_latency({.damage = 0.01})},
    {"duplication", with_latency({.duplication = 0.01})},
    {"garbage", with_latency({.garbage = 0.01})},
    {"mixed", with_latency({.packet_loss = 0.05, .damage = 0.001, .duplication = 0.01, .garbage = 0.01})},
};

struct matrix_case {
    std::size_t pairing_index;
    std::size_t fault_index;
};

class InteropMatrix : public ::testing::TestWithParam<matrix_case> {};

TEST_P(InteropMatrix, SessionsCompleteWithEveryByteChecked) {
    static const auto pairings = all_pairings();
    const pairing& p = pairings[GetParam().pairing_index];
    const fault_case& fc = fault_cases[GetParam().fault_index];
    const std::uint64_t seeds = test::seed_count("KDCOM_INTEROP_SEEDS", 200);
    std::uint64_t completed = 0, stopped_by_peer = 0;
    interop_result total;
    std::vector<std::uint64_t> incomplete;
    std::string first_reason;
    for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
        const interop_result r = p.run({.to_target = fc.f, .to_debugger = fc.f, .seed = seed}, {});
        ASSERT_TRUE(r.damage.empty()) << p.name << " " << fc.name << " seed " << seed << ": " << r.damage;
        if (r.completed) {
            ++completed;
        } else if (!r.stopped_by_peer.empty()) {
            ++stopped_by_peer;
            if (first_reason.empty()) first_reason = r.stopped_by_peer;
        } else {
            incomplete.push_back(seed);
        }
        total.retransmissions += r.retransmissions;
        total.resends += r.resends;
        total.resyncs += r.resyncs;
        total.stray_replies += r.stray_replies;
    }
    std::printf("%-30s %-12s completed %llu/%llu, %llu stopped by the peer's design; retransmissions %llu, "
                "RESENDs %llu, resyncs %llu, stray replies %llu\n",
                p.name.c_str(), fc.name, static_cast<unsigned long long>(completed),
                static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(stopped_by_peer),
                static_cast<unsigned long long>(total.retransmissions), static_cast<unsigned long long>(total.resends),
                static_cast<unsigned long long>(total.resyncs), static_cast<unsigned long long>(total.stray_replies));
    if (!first_reason.empty()) {
        std::printf("%43s why: %s\n", "", first_reason.c_str());
        RecordProperty("stopped_by_peer_design", first_reason);
    }
    EXPECT_TRUE(incomplete.empty()) << p.name << " under " << fc.name << ": " << incomplete.size()
                                    << " sessions did not finish and nothing in the peer explains it; first seed "
                                    << (incomplete.empty() ? 0 : incomplete.front());
}

std::vector<matrix_case> all_cases() {
    std::vector<matrix_case> cases;
    const std::size_t n = all_pairings().size();
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < std::size(fault_cases); ++j) cases.push_back({i, j});
    return cases;
}

INSTANTIATE_TEST_SUITE_P(Peers, InteropMatrix, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<matrix_case>& param) {
                             static const auto pairings = all_pairings();
                             return pairings[param.param.pairing_index].name + "_" + fault_cases[param.param.fault_index].name;
                         });

}  // namespace
