// Bodies that carry their own number, so that a fuzzer can tell which packet arrived and whether
// it arrived intact: the first four bytes are the number, the rest follows from it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace kdcom::fuzz {

// Body number `sequence`, `size` bytes (at least 8).
inline std::vector<std::uint8_t> numbered_body(std::uint32_t sequence, std::size_t size) {
    std::vector<std::uint8_t> b(std::max<std::size_t>(size, 8), 0x5A);
    std::memcpy(b.data(), &sequence, 4);  // host order: only this process reads it
    b[4] = 0xEE;                          // never a droppable message
    for (std::size_t i = 8; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(sequence * 31 + i);
    return b;
}

// The number a body says it carries (0 for a body too short to say).
inline std::uint32_t number_of(const std::vector<std::uint8_t>& body) {
    std::uint32_t s = 0;
    if (body.size() >= 4) std::memcpy(&s, body.data(), 4);
    return s;
}

}  // namespace kdcom::fuzz
