// Seeded randomness for the simulator, defined only in terms of std::mt19937_64's specified output
// (not the standard distributions, whose results vary between libraries), so a seed replays the
// same run on every platform.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "kdcom/wire/constants.hpp"

namespace kdcom::sim {

// An independent seed for stream `stream` of a run seeded with `seed` (splitmix64's finaliser).
inline std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream) noexcept {
    std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + stream;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

class random {
public:
    explicit random(std::uint64_t seed) : engine_(seed) {}

    std::uint64_t next() { return engine_(); }
    // Uniform in [0, n); n > 0. The modulo bias is irrelevant at these sizes.
    std::uint64_t below(std::uint64_t n) { return engine_() % n; }
    // Uniform in [0, 1).
    double unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
    bool chance(double p) { return p > 0 && unit() < p; }
    std::uint8_t byte() { return static_cast<std::uint8_t>(engine_()); }

    // Line noise that matters to a KDCOM receiver: random bytes mixed with runs of leader bytes,
    // stray break-in bytes and trailer bytes, so false leaders and false frames are common.
    std::vector<std::uint8_t> garbage(std::size_t length) {
        std::vector<std::uint8_t> out;
        out.reserve(length);
        while (out.size() < length) {
            switch (below(8)) {
            case 0: case 1: case 2: out.push_back(byte()); break;
            case 3: case 4: case 5: {
                const std::uint8_t leader = below(2) ? wire::data_leader_byte : wire::control_leader_byte;
                for (auto n = below(5); n > 0 && out.size() < length; --n) out.push_back(leader);
                break;
            }
            case 6: out.push_back(wire::breakin_byte); break;
            default: out.push_back(below(2) ? wire::trailer_byte : 0); break;
            }
        }
        return out;
    }

private:
    std::mt19937_64 engine_;
};

}  // namespace kdcom::sim
