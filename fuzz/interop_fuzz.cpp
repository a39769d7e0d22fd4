// libFuzzer target for kdcom against the models of other KDCOM implementations: the fuzzer picks
// the pairing (sim/interop.hpp), the faults on each direction of the line (loss, damage,
// duplication, noise, chunking, delay, jitter), the seed and how many reads each of the two
// debuggers makes.
//
// Invariants checked:
// - no run ever takes a wrong or short reply, whatever the faults;
// - on a line without faults every run finishes within bounded virtual time (no wedge);
// - the kdcom endpoint's memory stays at what it allocated at construction.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "kdcom/sim/interop.hpp"
#include "fuzz_choices.hpp"

namespace {
using namespace kdcom;
using namespace std::chrono_literals;

[[noreturn]] void fail(const char* what, const std::string& detail) {
    std::fprintf(stderr, "interop invariant violated: %s: %s\n", what, detail.c_str());
    std::abort();
}

using fuzz::choices;

sim::faults choose_faults(choices& c) {
    sim::faults f;
    f.packet_loss = c.share(0.05);
    f.damage = c.share(0.01);
    f.duplication = c.share(0.02);
    f.garbage = c.share(0.02);
    f.max_chunk = c.byte() % 4 == 0 ? 1 + c.byte() % 64 : 0;
    f.delay = std::chrono::microseconds(c.byte() * 10);
    f.jitter = std::chrono::microseconds(c.byte() * 10);
    return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto pairings = sim::all_pairings();
    choices c(data, size);
    const auto& p = pairings[c.byte() % pairings.size()];
    sim::duplex_config link;
    link.to_target = choose_faults(c);
    link.to_debugger = choose_faults(c);
    link.seed = c.byte() | c.byte() << 8 | static_cast<std::uint64_t>(c.byte()) << 16;
    const sim::interop_plan plan{.first_reads = c.byte() % 40u, .second_reads = c.byte() % 8u, .limit = 10min};

    const auto r = p.run(link, plan);
    if (!r.damage.empty()) fail("a wrong reply was taken", p.name + ": " + r.damage);
    if (link.to_target.none() && link.to_debugger.none() && !r.completed)
        fail("a run on a clean line did not finish", p.name + (r.gave_up.empty() ? "" : ": " + r.gave_up));
    // The endpoint's frame buffers (two of 4017 bytes) and its event queue (32 events).
    if (r.most_endpoint_memory > 2 * wire::data_packet_size(wire::default_max_body) + 32 * sizeof(endpoint_event))
        fail("the endpoint's memory grew", p.name);
    return 0;
}
