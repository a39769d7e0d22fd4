// Packets numbered by their body, so that what a side received can be checked against what the
// other side sent: every one delivered, in order, byte-exact, and how many came twice.
#pragma once

#include <cstdint>
#include <vector>

#include "kdcom/sim/world.hpp"
#include "support/decode_helpers.hpp"

namespace kdcom::test {

// A body of `size` bytes (at least 8) that starts with `sequence` and is otherwise derived from it,
// so a damaged body cannot pass for another.
inline bytes numbered_body(std::uint32_t sequence, std::size_t size) {
    bytes b(std::max<std::size_t>(size, 8));
    std::uint32_t x = sequence * 2654435761u + 1;
    for (std::size_t i = 0; i < b.size(); ++i) {
        x = x * 1103515245u + 12345u;
        b[i] = static_cast<std::uint8_t>(x >> 16);
    }
    for (int i = 0; i < 4; ++i) b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(sequence >> (8 * i));
    // Never look like a droppable message: those may legitimately give up.
    b[4] = 0xEE;
    return b;
}

inline std::uint32_t sequence_of(const bytes& body) {
    std::uint32_t s = 0;
    for (int i = 0; i < 4; ++i) s |= static_cast<std::uint32_t>(body[static_cast<std::size_t>(i)]) << (8 * i);
    return s;
}

struct delivery_check {
    bool in_order_and_exact = true;  // sequences never go backwards; bodies match what was sent
    bool complete = true;            // every sent sequence arrived
    std::size_t duplicates = 0;      // deliveries of a sequence already delivered
    std::string problem;
};

// `sent` are the bodies in sending order; `received` what the other side's inbox holds.
inline delivery_check check_deliveries(const std::vector<bytes>& sent,
                                       const std::vector<sim::delivered_packet>& received) {
    delivery_check c;
    std::vector<bool> seen(sent.size(), false);
    std::uint32_t last = 0;
    bool any = false;
    for (const auto& r : received) {
        const std::uint32_t s = r.body.size() >= 4 ? sequence_of(r.body) : UINT32_MAX;
        if (s >= sent.size() || r.body != sent[s]) {
            c.in_order_and_exact = false;
            c.problem = "a delivered body was never sent";
            continue;
        }
        if (any && s < last) {
            if (seen[s]) ++c.duplicates;
            if (!seen[s] || s + 1 < last) {
                c.in_order_and_exact = false;
                c.problem = "packet " + std::to_string(s) + " delivered after " + std::to_string(last);
            }
            continue;
        }
        if (seen[s]) ++c.duplicates;
        seen[s] = true;
        last = s;
        any = true;
    }
    for (std::size_t i = 0; i < sent.size(); ++i)
        if (!seen[i]) {
            c.complete = false;
            if (c.problem.empty()) c.problem = "packet " + std::to_string(i) + " never delivered";
        }
    return c;
}

}  // namespace kdcom::test
