// The fake kernel's memory: `size` bytes whose contents are a pure function of the address (so a
// 1 GiB image costs nothing and any read can be checked by anyone), plus whatever was written,
// kept page by page. Not thread-safe: the kernel and the bridge's fast path must not share one
// without a lock.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <unordered_map>

#include <boost/endian/conversion.hpp>

namespace kdcom::guest {

class memory_image {
public:
    static constexpr std::size_t page_size = 4096;

    explicit memory_image(std::uint64_t size, std::uint32_t seed = 1) : size_(size), seed_(seed) {}

    std::uint64_t size() const noexcept { return size_; }

    // The byte an address holds if nothing was written there: byte (address % 8) of a hash of
    // the 8-byte word it belongs to.
    std::uint8_t pristine(std::uint64_t address) const noexcept {
        return static_cast<std::uint8_t>(pristine_word(address >> 3) >> (8 * (address & 7)));
    }

    // Copies what the image holds from `address`; returns the bytes copied (less at the end).
    std::size_t read(std::uint64_t address, std::span<std::uint8_t> out) const {
        if (address >= size_) return 0;
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), size_ - address));
        if (written_.empty()) {  // the common case, a word at a time
            std::size_t i = 0;
            for (; i < n && (address + i) % 8 != 0; ++i) out[i] = pristine(address + i);
            for (; i + 8 <= n; i += 8) boost::endian::store_little_u64(&out[i], pristine_word((address + i) >> 3));
            for (; i < n; ++i) out[i] = pristine(address + i);
            return n;
        }
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint64_t a = address + i;
            const auto page = written_.find(a / page_size);
            out[i] = page != written_.end() ? page->second[a % page_size] : pristine(a);
        }
        return n;
    }

    std::size_t write(std::uint64_t address, std::span<const std::uint8_t> in) {
        if (address >= size_) return 0;
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(in.size(), size_ - address));
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint64_t a = address + i;
            auto [page, fresh] = written_.try_emplace(a / page_size);
            if (fresh)
                for (std::size_t j = 0; j < page_size; ++j) page->second[j] = pristine(a / page_size * page_size + j);
            page->second[a % page_size] = in[i];
        }
        return n;
    }

private:
    std::uint64_t pristine_word(std::uint64_t word) const noexcept {
        std::uint64_t x = word * 0x9E3779B97F4A7C15u + seed_;
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9u;
        x ^= x >> 32;
        return x;
    }

    std::uint64_t size_;
    std::uint32_t seed_;
    std::unordered_map<std::uint64_t, std::array<std::uint8_t, page_size>> written_;
};

}  // namespace kdcom::guest
