// The body checksum: the 32-bit unsigned sum of the body bytes (the header is not included).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace kdcom::wire {

// The decoder runs this over every received body, so it bounds decoding speed. Bytes are summed
// into 32 independent 16-bit lanes, which compilers turn into wide vector adds on any target;
// each lane takes at most 256 bytes (256 * 255 < 65536) before it is folded into the 32-bit total,
// so no lane overflows. About 2x a plain byte loop (docs/benchmarks.md).
inline std::uint32_t checksum(std::span<const std::uint8_t> body) noexcept {
    constexpr std::size_t lanes = 32;
    constexpr std::size_t max_rows = 256;
    const std::uint8_t* p = body.data();
    std::size_t n = body.size();
    std::uint32_t total = 0;
    while (n >= lanes) {
        const std::size_t rows = n / lanes < max_rows ? n / lanes : max_rows;
        std::uint16_t acc[lanes] = {};
        for (std::size_t r = 0; r < rows; ++r, p += lanes)
            for (std::size_t i = 0; i < lanes; ++i) acc[i] = static_cast<std::uint16_t>(acc[i] + p[i]);
        for (std::uint16_t a : acc) total += a;
        n -= rows * lanes;
    }
    while (n-- > 0) total += *p++;
    return total;
}

// Copies `from` to the start of `to` (at least as long; the two must not overlap) and returns the
// checksum of the bytes copied, in one pass instead of a copy and then a sum: the encoder builds
// every frame this way. The same lanes as checksum(); each row goes through a local copy, which
// tells the compiler the store cannot change what is being summed, so both vectorise (summing
// straight from `from`, GCC 12 cannot rule that out and the loop runs at half the speed).
inline std::uint32_t copy_and_checksum(std::span<std::uint8_t> to, std::span<const std::uint8_t> from) noexcept {
    constexpr std::size_t lanes = 32;
    constexpr std::size_t max_rows = 256;
    const std::uint8_t* p = from.data();
    std::uint8_t* q = to.data();
    std::size_t n = from.size();
    std::uint32_t total = 0;
    while (n >= lanes) {
        const std::size_t rows = n / lanes < max_rows ? n / lanes : max_rows;
        std::uint16_t acc[lanes] = {};
        for (std::size_t r = 0; r < rows; ++r, p += lanes, q += lanes) {
            std::uint8_t row[lanes];
            std::memcpy(row, p, lanes);
            std::memcpy(q, row, lanes);
            for (std::size_t i = 0; i < lanes; ++i) acc[i] = static_cast<std::uint16_t>(acc[i] + row[i]);
        }
        for (std::uint16_t a : acc) total += a;
        n -= rows * lanes;
    }
    for (; n > 0; --n) {
        *q++ = *p;
        total += *p++;
    }
    return total;
}

// Continues a checksum over a second buffer: checksum(a ++ b) == checksum(b, checksum(a)).
inline std::uint32_t checksum(std::span<const std::uint8_t> more, std::uint32_t so_far) noexcept {
    return so_far + checksum(more);
}

}  // namespace kdcom::wire
