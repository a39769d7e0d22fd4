// The in-band reset of a region that outlives the guest's boots (layout.h, "Generations"): the
// guest asks for a generation, the host sets the region up afresh for it. No I/O and no waiting:
// the signalling and the waits around these steps are the caller's.
//
// Every access to the header's words is atomic: the other side may be reading or writing the same
// words at the same time (a guest may write anything at any time).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

#include "kdcom/error.hpp"
#include "kdcom/shm/layout.h"
#include "kdcom/shm/region.hpp"

namespace kdcom::shm::generation {

namespace detail {
inline std::atomic_ref<std::uint32_t> word(std::span<std::uint8_t> memory, std::size_t offset) noexcept {
    return std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(memory.data() + offset));
}
}  // namespace detail

// Host: sets `memory` up for `p` (its generation included), as region::initialise does, but word
// by word with atomic stores, leaving requested_generation alone, and storing the generation last
// (release): a guest that sees its number sees the whole header and zeroed counters.
inline std::error_code publish(std::span<std::uint8_t> memory, const region_parameters& p, std::uint32_t host_peer) noexcept {
    if (!region::can_hold(memory, p)) return errc::shm_incompatible_region;
    kdcom_shm_header h = region::header_for(p);
    h.host_peer = host_peer;
    const auto* words = reinterpret_cast<const std::uint32_t*>(&h);
    for (std::size_t offset = 0; offset < sizeof h; offset += 4) {
        if (offset == offsetof(kdcom_shm_header, requested_generation) || offset == offsetof(kdcom_shm_header, generation))
            continue;
        detail::word(memory, offset).store(words[offset / 4], std::memory_order_relaxed);
    }
    detail::word(memory, offsetof(kdcom_shm_header, generation)).store(p.generation, std::memory_order_release);
    return {};
}

// Host: the generation the guest asks for (it differs from the one served when the guest wants a
// new one). `memory` holds at least a header.
inline std::uint32_t requested(std::span<std::uint8_t> memory) noexcept {
    return detail::word(memory, offsetof(kdcom_shm_header, requested_generation)).load(std::memory_order_acquire);
}

// Guest: asks for a new generation and returns its number; then signal the host and wait until
// served() says it is ready.
inline std::uint32_t request(std::span<std::uint8_t> memory) noexcept {
    const std::uint32_t now = detail::word(memory, offsetof(kdcom_shm_header, generation)).load(std::memory_order_acquire);
    const std::uint32_t asked = detail::word(memory, offsetof(kdcom_shm_header, requested_generation)).load(std::memory_order_relaxed);
    std::uint32_t next = (asked - now < 0x80000000u ? asked : now) + 1;  // the later of the two, on a circle
    if (next == 0) next = 1;
    detail::word(memory, offsetof(kdcom_shm_header, requested_generation)).store(next, std::memory_order_release);
    return next;
}

// Guest: whether the host has set the region up for generation `g` (acquire: the header and the
// zeroed counters are then visible).
inline bool served(std::span<std::uint8_t> memory, std::uint32_t g) noexcept {
    return detail::word(memory, offsetof(kdcom_shm_header, generation)).load(std::memory_order_acquire) == g;
}

// Either side: the host's peer id (ivshmem), read once.
inline std::uint32_t host_peer(std::span<std::uint8_t> memory) noexcept {
    return detail::word(memory, offsetof(kdcom_shm_header, host_peer)).load(std::memory_order_acquire);
}

}  // namespace kdcom::shm::generation
