// Decoder throughput against memcpy of the same bytes, in the same binary and run.
//   build/bench/decoder_bench            (ratios are printed after the table)
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "kdcom/decode/decoder.hpp"
#include "kdcom/wire/encoder.hpp"
#include "ratio_reporter.hpp"

namespace {
using namespace kdcom;
using bytes = std::vector<std::uint8_t>;

constexpr std::size_t stream_packets = 256;  // about 1 MiB of 4000-byte packets

// A stream of valid data packets with random bodies of `body_size` bytes.
const bytes& packet_stream(std::size_t body_size) {
    static std::map<std::size_t, bytes> cache;
    bytes& s = cache[body_size];
    if (!s.empty()) return s;
    std::mt19937 rng(1);
    bytes body(body_size);
    const std::size_t frame = wire::data_packet_size(body_size);
    s.resize(frame * stream_packets);
    for (std::size_t i = 0; i < stream_packets; ++i) {
        for (auto& b : body) b = static_cast<std::uint8_t>(rng());
        std::error_code ec;
        wire::encode_data_packet(std::span(s).subspan(i * frame), wire::packet_type::state_manipulate,
                                 wire::initial_packet_id | (i & 1), body, ec);
    }
    return s;
}

const bytes& random_garbage() {
    static const bytes g = [] {
        bytes out(1 << 20);
        std::mt19937 rng(2);
        for (auto& b : out) b = static_cast<std::uint8_t>(rng());
        return out;
    }();
    return g;
}

// The baseline: copying the same bytes.
void copy_bytes(benchmark::State& state, const bytes& in) {
    bytes out(in.size());
    for (auto _ : state) {
        std::memcpy(out.data(), in.data(), in.size());
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
}

void BM_Memcpy(benchmark::State& state) { copy_bytes(state, packet_stream(static_cast<std::size_t>(state.range(0)))); }

// Decodes the stream pushed in chunks of `chunk` bytes (0: the whole stream at once).
void decode_stream(benchmark::State& state, const bytes& in, std::size_t chunk) {
    decode::decoder d;
    std::uint64_t packets = 0;
    for (auto _ : state) {
        for (std::size_t at = 0; at < in.size();) {
            const std::size_t n = chunk == 0 ? in.size() : std::min(chunk, in.size() - at);
            d.push(std::span(in).subspan(at, n));
            while (auto e = d.next()) {
                packets += std::holds_alternative<decode::data_packet>(*e);
                benchmark::DoNotOptimize(*e);
            }
            at += n;
        }
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
    state.counters["packets/s"] = benchmark::Counter(static_cast<double>(packets), benchmark::Counter::kIsRate);
}

void BM_DecodePackets(benchmark::State& state) {
    decode_stream(state, packet_stream(static_cast<std::size_t>(state.range(0))), 0);
}

// Reads of a fixed size, as from a socket: the packets that straddle two reads go through the
// decoder's buffer. With 1460-byte reads (one TCP segment) every 4000-byte packet does.
void BM_DecodePacketsInReads(benchmark::State& state) {
    decode_stream(state, packet_stream(static_cast<std::size_t>(state.range(0))),
                  static_cast<std::size_t>(state.range(1)));
}

void BM_MemcpyGarbage(benchmark::State& state) { copy_bytes(state, random_garbage()); }

void BM_ScanGarbage(benchmark::State& state) { decode_stream(state, random_garbage(), 0); }

BENCHMARK(BM_Memcpy)->Arg(4000)->Arg(64);
BENCHMARK(BM_DecodePackets)->Arg(4000)->Arg(64);
BENCHMARK(BM_DecodePacketsInReads)->Args({4000, 1460})->Args({4000, 65536});
BENCHMARK(BM_MemcpyGarbage);
BENCHMARK(BM_ScanGarbage);

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    kdcom::bench::ratio_reporter reporter({
        {"BM_DecodePackets/4000", "BM_Memcpy/4000"},
        {"BM_DecodePacketsInReads/4000/1460", "BM_Memcpy/4000"},
        {"BM_DecodePacketsInReads/4000/65536", "BM_Memcpy/4000"},
        {"BM_DecodePackets/64", "BM_Memcpy/64"},
        {"BM_ScanGarbage", "BM_MemcpyGarbage"},
    });
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
