// The fake kernel's memory: `size` bytes whose contents are a pure function of the address (so a
// 1 GiB image costs nothing and any read can be checked by anyone), plus whatever was written,
// kept page by page. Not thread-safe: the kernel and the bridge's fast path must not share one
// without a lock.
//
// Pristine contents: word i of page p is pattern[i] ^ key(p), a table of 512 hashed words made
// from the seed and one hash of the page number. Every word of the image differs from every other
// word at the same offset and from the other words of its page, so a read from the wrong place
// shows, and a read costs about what copying real memory does (one XOR per word; hashing every
// word cost six times more, and the fake memory, on the critical path of every benchmark path
// including the raw baselines, was slower than the link it was read over).
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

    explicit memory_image(std::uint64_t size, std::uint32_t seed = 1) : size_(size), seed_(seed) {
        for (std::size_t i = 0; i < pattern_.size(); ++i) pattern_[i] = hash(i, seed_ ^ 0x5851F42Du);
    }

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
            while (i + 8 <= n) {  // a page's whole words at a time: one key, then a loop GCC vectorises
                const std::uint64_t word = (address + i) >> 3;
                const std::uint64_t key = page_key(word / words_per_page);
                const std::size_t first = word % words_per_page;
                const std::size_t count = std::min<std::size_t>(words_per_page - first, (n - i) / 8);
                for (std::size_t j = 0; j < count; ++j)
                    boost::endian::store_little_u64(&out[i + 8 * j], pattern_[first + j] ^ key);
                i += 8 * count;
            }
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
    static constexpr std::size_t words_per_page = page_size / 8;

    static std::uint64_t hash(std::uint64_t value, std::uint32_t seed) noexcept {
        std::uint64_t x = value * 0x9E3779B97F4A7C15u + seed;
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9u;
        x ^= x >> 32;
        return x;
    }
    std::uint64_t page_key(std::uint64_t page) const noexcept { return hash(page, seed_); }
    std::uint64_t pristine_word(std::uint64_t word) const noexcept {
        return pattern_[word % words_per_page] ^ page_key(word / words_per_page);
    }

    std::uint64_t size_;
    std::uint32_t seed_;
    std::array<std::uint64_t, words_per_page> pattern_;
    std::unordered_map<std::uint64_t, std::array<std::uint8_t, page_size>> written_;
};

}  // namespace kdcom::guest
