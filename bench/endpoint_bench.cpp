// CPU cost of the reliability layer: one send/ACK cycle between two endpoints in memory (the
// debugger sends, the target takes it and acknowledges, the debugger completes), against encoding
// and decoding the same packet with no state machine, in the same run. Heap allocations during
// the timed loop are counted; the goal is zero per packet.
//   build/bench/endpoint_bench
#include <vector>

#include <benchmark/benchmark.h>

#include "allocation_counter.hpp"
#include "kdcom/decode/decoder.hpp"
#include "kdcom/endpoint/endpoint.hpp"
#include "kdcom/wire/encoder.hpp"
#include "ratio_reporter.hpp"

namespace {
using namespace kdcom;
using bytes = std::vector<std::uint8_t>;

bytes body_of(std::size_t size) {
    bytes b(size);
    for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<std::uint8_t>(i * 7 + 1);
    return b;
}

void report(benchmark::State& state, std::size_t body, std::size_t allocations_before) {
    const auto n = static_cast<double>(state.iterations());
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * wire::data_packet_size(body)));
    state.counters["ns/packet"] = benchmark::Counter(n, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    state.counters["allocs/packet"] =
        static_cast<double>(bench::allocations.load() - allocations_before) / n;
}

// One full cycle per iteration, every byte going through both decoders.
void BM_SendAckCycle(benchmark::State& state) {
    const std::size_t size = static_cast<std::size_t>(state.range(0));
    const bytes body = body_of(size);
    endpoint debugger({.role = role::debugger, .send_resets = false});
    endpoint target({.role = role::target});
    timestamp now{};
    bytes ack;
    ack.reserve(64);
    std::uint64_t delivered = 0;

    auto cycle = [&] {
        (void)debugger.send(wire::packet_type::state_manipulate, body, {}, now);
        while (auto e = debugger.next_event()) {
            if (auto* t = std::get_if<events::transmit>(&*e)) {
                target.receive(t->bytes(), now);  // the frame lives in the debugger until its next call
                ack.clear();
                while (auto te = target.next_event()) {
                    if (auto* a = std::get_if<events::transmit>(&*te)) ack.insert(ack.end(), a->bytes().begin(), a->bytes().end());
                    else if (auto* p = std::get_if<events::packet_received>(&*te)) delivered += p->body.size();
                }
            }
        }
        debugger.receive(ack, now);
        while (auto e = debugger.next_event()) benchmark::DoNotOptimize(*e);
    };
    for (int i = 0; i < 16; ++i) cycle();  // reach steady state before counting
    const std::size_t before = bench::allocations.load();
    for (auto _ : state) {
        cycle();
        now += std::chrono::microseconds(1);
    }
    report(state, size, before);
    if (delivered == 0) state.SkipWithError("nothing was delivered");
}

// The baseline: encode the packet and decode it again, nothing else.
void BM_EncodeDecodeOnly(benchmark::State& state) {
    const std::size_t size = static_cast<std::size_t>(state.range(0));
    const bytes body = body_of(size);
    bytes frame(wire::data_packet_size(size));
    decode::decoder decoder;
    const std::size_t before = bench::allocations.load();
    for (auto _ : state) {
        std::error_code ec;
        wire::encode_data_packet(frame, wire::packet_type::state_manipulate, wire::initial_packet_id, body, ec);
        decoder.push(frame);
        while (auto e = decoder.next()) benchmark::DoNotOptimize(*e);
    }
    report(state, size, before);
}

BENCHMARK(BM_SendAckCycle)->Arg(4000)->Arg(56);
BENCHMARK(BM_EncodeDecodeOnly)->Arg(4000)->Arg(56);

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    kdcom::bench::ratio_reporter reporter({
        {"BM_SendAckCycle/4000", "BM_EncodeDecodeOnly/4000"},
        {"BM_SendAckCycle/56", "BM_EncodeDecodeOnly/56"},
    });
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
