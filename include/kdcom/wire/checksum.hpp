// The body checksum: the 32-bit unsigned sum of the body bytes (the header is not included).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace kdcom::wire {

// Written as independent lane sums so the compiler can vectorise it: the decoder runs it over every
// received body, so it bounds decoding speed. A body is at most 65535 bytes, so a 32-bit lane of
// byte values cannot overflow before the final (modular) sum.
inline std::uint32_t checksum(std::span<const std::uint8_t> body) noexcept {
    const std::uint8_t* p = body.data();
    std::size_t n = body.size();
    std::uint32_t lanes[8] = {};
    while (n >= 8) {
        for (int i = 0; i < 8; ++i) lanes[i] += p[i];
        p += 8;
        n -= 8;
    }
    std::uint32_t sum = 0;
    for (std::uint32_t lane : lanes) sum += lane;
    while (n-- > 0) sum += *p++;
    return sum;
}

// Continues a checksum over a second buffer: checksum(a ++ b) == checksum(b, checksum(a)).
inline std::uint32_t checksum(std::span<const std::uint8_t> more, std::uint32_t so_far) noexcept {
    return so_far + checksum(more);
}

}  // namespace kdcom::wire
