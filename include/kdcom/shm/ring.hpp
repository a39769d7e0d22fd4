// One single-producer/single-consumer ring of the guest shared-memory region (layout.h), for
// either end. The region is shared with a guest that may be buggy or hostile and may write any
// byte at any time, so:
// - each side keeps its own counter privately and only ever stores it to the region; it never
//   reads its own counter back;
// - the other side's counter and each message header are read once, copied, and validated
//   (no double fetch); a payload is copied out once, then handed over;
// - anything inconsistent (more bytes claimed than the ring holds, a length over the limit or
//   beyond what was published, an unknown kind) is reported as `corrupt` and nothing is consumed.
// No allocation; no waiting (the doorbell is the transport's business).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "kdcom/shm/layout.h"

namespace kdcom::shm {

enum class ring_status { ok, empty, full, too_large, corrupt };

class ring {
public:
    // `data` holds `size` bytes (a power of two, at least 4096) and is 8-byte aligned; `counters`
    // lives in the region.
    ring(kdcom_shm_ring_counters* counters, std::uint8_t* data, std::uint32_t size, std::uint32_t max_message) noexcept
        : counters_(counters), data_(data), size_(size), max_message_(max_message) {}

    static constexpr std::uint32_t header_size = sizeof(kdcom_shm_message_header);

    // Bytes a message of `payload` bytes takes in the ring. 64-bit: a length near 2^32 taken from
    // the region must not wrap around to a small footprint.
    static constexpr std::uint64_t footprint(std::uint64_t payload) noexcept {
        return (header_size + payload + KDCOM_SHM_ALIGN - 1) & ~std::uint64_t{KDCOM_SHM_ALIGN - 1};
    }

    // Producer: appends one message. full: not enough room now; too_large: never fits.
    ring_status write(std::uint16_t kind, std::span<const std::uint8_t> payload) noexcept {
        if (payload.size() > max_message_ || footprint(payload.size()) > size_)
            return ring_status::too_large;
        // The consumer's, read once; sequentially consistent for the doorbell handshake.
        const std::uint32_t tail = std::atomic_ref<std::uint32_t>(counters_->tail).load(std::memory_order_seq_cst);
        const std::uint32_t used = head_ - tail;
        if (used > size_ || !aligned(head_)) return ring_status::corrupt;
        const auto total = static_cast<std::uint32_t>(footprint(payload.size()));  // at most size_
        if (size_ - used < total) return ring_status::full;
        const kdcom_shm_message_header h{static_cast<std::uint32_t>(payload.size()), kind, 0};
        const std::uint32_t offset = head_ & (size_ - 1);
        std::uint64_t word;
        std::memcpy(&word, &h, header_size);
        store_word(data_ + offset, word);  // never wraps: offset and size are multiples of 8
        copy_in((offset + header_size) & (size_ - 1), payload);
        head_ += total;
        // Sequentially consistent, for the doorbell handshake (consumer_sleeping() after it).
        std::atomic_ref<std::uint32_t>(counters_->head).store(head_, std::memory_order_seq_cst);
        return ring_status::ok;
    }

    // Consumer: copies the next message's payload into `buffer` (at least max_message bytes) and
    // sets `kind` and `length`. Nothing is consumed unless it returns ok.
    ring_status read(std::span<std::uint8_t> buffer, std::uint16_t& kind, std::size_t& length) noexcept {
        // The producer's, read once; sequentially consistent for the doorbell handshake.
        const std::uint32_t head = std::atomic_ref<std::uint32_t>(counters_->head).load(std::memory_order_seq_cst);
        const std::uint32_t used = head - tail_;
        // A counter taken from the region by resynchronise() may be anything: a misaligned one
        // would put a header across the end of the ring.
        if (!aligned(tail_)) return ring_status::corrupt;
        if (used == 0) return ring_status::empty;
        if (used > size_ || used < header_size || !aligned(used)) return ring_status::corrupt;
        const std::uint32_t offset = tail_ & (size_ - 1);
        kdcom_shm_message_header h;
        const std::uint64_t word = load_word(data_ + offset);  // one fetch; only the copy is used below
        std::memcpy(&h, &word, header_size);
        if (h.length > max_message_ || h.length > buffer.size() || footprint(h.length) > used ||
            h.kind == 0 || h.kind > KDCOM_SHM_KD_PDU)
            return ring_status::corrupt;
        copy_out((offset + header_size) & (size_ - 1), buffer.first(h.length));
        kind = h.kind;
        length = h.length;
        tail_ += static_cast<std::uint32_t>(footprint(h.length));  // at most used
        // Sequentially consistent, so that the producer_waiting() load after it cannot be
        // reordered before it (the doorbell handshake).
        std::atomic_ref<std::uint32_t>(counters_->tail).store(tail_, std::memory_order_seq_cst);
        return ring_status::ok;
    }

    // Doorbell handshake (layout.h). Producer: before sleeping for room, mark_waiting(true) and
    // write() again (a consumer that advanced tail in between then sees the mark); after it,
    // mark_waiting(false). Consumer: after a read(), producer_waiting() says whether to ring the
    // producer's doorbell. Each side stores then loads with sequentially consistent operations
    // (the mark then tail; tail then the mark), so at least one sees the other: no lost wake-up.
    // The same the other way: a consumer about to sleep calls mark_sleeping(true) and read()s
    // again; a producer after a write() asks consumer_sleeping() whether to ring.
    void mark_waiting(bool waiting) noexcept {
        std::atomic_ref<std::uint32_t>(counters_->producer_waiting).store(waiting ? 1 : 0, std::memory_order_seq_cst);
    }
    bool producer_waiting() const noexcept {
        return std::atomic_ref<std::uint32_t>(counters_->producer_waiting).load(std::memory_order_seq_cst) != 0;
    }

    // Consumer: whether a message may be waiting (a later read() says for sure).
    bool maybe_readable() const noexcept {
        return std::atomic_ref<std::uint32_t>(counters_->head).load(std::memory_order_seq_cst) != tail_;
    }
    void mark_sleeping(bool sleeping) noexcept {
        std::atomic_ref<std::uint32_t>(counters_->consumer_sleeping).store(sleeping ? 1 : 0, std::memory_order_seq_cst);
    }
    bool consumer_sleeping() const noexcept {
        return std::atomic_ref<std::uint32_t>(counters_->consumer_sleeping).load(std::memory_order_seq_cst) != 0;
    }

    // Starts over from the counters the region holds now (after the guest re-initialised it).
    void resynchronise() noexcept {
        head_ = load(counters_->head);
        tail_ = load(counters_->tail);
    }

    std::uint32_t size() const noexcept { return size_; }

private:
    static constexpr bool aligned(std::uint32_t v) noexcept { return (v & (KDCOM_SHM_ALIGN - 1)) == 0; }

    static std::uint32_t load(std::uint32_t& shared) noexcept {
        return std::atomic_ref<std::uint32_t>(shared).load(std::memory_order_acquire);
    }

    // The region's bytes are copied a 64-bit word at a time with relaxed atomic accesses: the other
    // side may write them at any moment, and a plain memcpy racing with it would be a data race
    // (undefined behaviour, and what ThreadSanitizer rightly reports). Messages start at multiples
    // of 8 and the ring's size is one, so every word is aligned and none straddles the wrap.
    static std::uint64_t load_word(const std::uint8_t* p) noexcept {
        return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(const_cast<std::uint8_t*>(p)))
            .load(std::memory_order_relaxed);
    }
    static void store_word(std::uint8_t* p, std::uint64_t v) noexcept {
        std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(p)).store(v, std::memory_order_relaxed);
    }

    // Writes `bytes` from `offset` (a multiple of 8), padding the last word with zeros. The words
    // before the end of the ring and those after it wraps are two plain loops (no index masking in
    // them, so they run at a word per cycle); only a last partial word is copied differently.
    void copy_in(std::uint32_t offset, std::span<const std::uint8_t> bytes) noexcept {
        const std::size_t whole = bytes.size() / 8;
        const std::size_t before_end = std::min<std::size_t>(whole, (size_ - offset) / 8);
        const std::uint8_t* from = bytes.data();
        store_words(data_ + offset, from, before_end);
        store_words(data_, from + before_end * 8, whole - before_end);
        if (const std::size_t rest = bytes.size() % 8) {
            std::uint64_t word = 0;
            std::memcpy(&word, from + whole * 8, rest);
            store_word(data_ + ((offset + whole * 8) & (size_ - 1)), word);
        }
    }
    void copy_out(std::uint32_t offset, std::span<std::uint8_t> out) noexcept {
        const std::size_t whole = out.size() / 8;
        const std::size_t before_end = std::min<std::size_t>(whole, (size_ - offset) / 8);
        std::uint8_t* to = out.data();
        load_words(to, data_ + offset, before_end);
        load_words(to + before_end * 8, data_, whole - before_end);
        if (const std::size_t rest = out.size() % 8) {
            const std::uint64_t word = load_word(data_ + ((offset + whole * 8) & (size_ - 1)));
            std::memcpy(to + whole * 8, &word, rest);
        }
    }
    static void store_words(std::uint8_t* to, const std::uint8_t* from, std::size_t words) noexcept {
        for (std::size_t i = 0; i < words; ++i) {
            std::uint64_t word;
            std::memcpy(&word, from + i * 8, 8);
            store_word(to + i * 8, word);
        }
    }
    static void load_words(std::uint8_t* to, const std::uint8_t* from, std::size_t words) noexcept {
        for (std::size_t i = 0; i < words; ++i) {
            const std::uint64_t word = load_word(from + i * 8);
            std::memcpy(to + i * 8, &word, 8);
        }
    }

    kdcom_shm_ring_counters* counters_;
    std::uint8_t* data_;
    std::uint32_t size_;
    std::uint32_t max_message_;
    std::uint32_t head_ = 0;  // producer's private copy
    std::uint32_t tail_ = 0;  // consumer's private copy
};

}  // namespace kdcom::shm
