// What a faulty line does to one write, for every simulated line in kdcom: the virtual-time
// links of sim/ (sim::link, which adds delay, jitter and chunking) and the Asio binding's
// faulty_link (kdcom-sim --faults, kdcom-replay --faults, the bridge's tests). One model, so a
// fault means the same thing wherever it is injected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kdcom/endpoint/config.hpp"
#include "kdcom/sim/random.hpp"

namespace kdcom::sim {

// Fault settings. "Per write" faults apply to one write() call, which is one packet, ACK or
// break-in byte for an endpoint; "per byte" ones to each byte.
struct faults {
    double packet_loss = 0;  // per write: the whole write vanishes
    double byte_loss = 0;    // per byte: the byte vanishes
    double corruption = 0;   // per byte: the byte is replaced by a random one
    double bit_flip = 0;     // per byte: one bit of it flips
    double damage = 0;       // per write: one of its bytes is replaced by another value
    double duplication = 0;  // per write: it arrives twice in a row
    double truncation = 0;   // per write: only a random prefix arrives
    double garbage = 0;      // per write: a burst of line noise arrives before it
    std::size_t garbage_max = 32;
    // The last three only where time is simulated (sim::link); faulty_link writes at once.
    // Deliveries are cut into chunks of 1..max_chunk bytes, each arriving as a separate read
    // (0: a write arrives as one read).
    std::size_t max_chunk = 0;
    timestamp delay{};   // one-way latency
    timestamp jitter{};  // extra latency per write, uniform in [0, jitter]; order is kept

    // Nothing at all: a perfect wire.
    bool none() const {
        return packet_loss == 0 && byte_loss == 0 && corruption == 0 && bit_flip == 0 && damage == 0 &&
               duplication == 0 && truncation == 0 && garbage == 0 && max_chunk == 0;
    }
};

// Applies `f`'s per-write and per-byte faults to `bytes`, drawing from `r`: false if the write is
// lost whole; otherwise `out` holds what arrives (maybe nothing, if every byte was lost). The
// draws depend only on `f`, `r` and the length of `bytes`: a seed replays the same faults.
inline bool apply_faults(const faults& f, random& r, std::span<const std::uint8_t> bytes, std::vector<std::uint8_t>& out) {
    out.clear();
    if (r.chance(f.packet_loss)) return false;
    if (r.chance(f.garbage)) out = r.garbage(1 + r.below(f.garbage_max));
    std::size_t length = bytes.size();
    if (length > 1 && r.chance(f.truncation)) length = r.below(length);
    // (A write cut to nothing has no byte to damage.)
    const std::size_t damaged = length > 0 && r.chance(f.damage) ? r.below(length) : length;
    const int copies = r.chance(f.duplication) ? 2 : 1;
    for (int copy = 0; copy < copies; ++copy) {
        for (std::size_t i = 0; i < length; ++i) {
            if (r.chance(f.byte_loss)) continue;
            std::uint8_t b = bytes[i];
            if (i == damaged) b = static_cast<std::uint8_t>(b + 1 + r.below(255));
            if (r.chance(f.corruption)) b = r.byte();
            if (r.chance(f.bit_flip)) b ^= static_cast<std::uint8_t>(1u << r.below(8));
            out.push_back(b);
        }
    }
    return true;
}

}  // namespace kdcom::sim
