// One side's view of a guest shared-memory region (layout.h): its header, checked once, and its two
// rings from that side's point of view. No I/O: whoever maps the memory (a VMM, the memfd
// transport, a test) hands it over as a span.
//
// The host writes the header of a region it creates (initialise) and from then on trusts only the
// parameters it wrote, never what the region says later. A side that attaches to a region made by
// someone else (attach) copies the header once, validates it against the size of its mapping,
// and uses only that copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <system_error>

#include "kdcom/error.hpp"
#include "kdcom/shm/layout.h"
#include "kdcom/shm/ring.hpp"

namespace kdcom::shm {

enum class side { host, guest };

struct region_parameters {
    std::uint32_t ring_size = 256 * 1024;  // a power of two, at least 4096
    std::uint32_t max_message = 16 * 1024;
    std::uint32_t generation = 0;

    std::size_t region_size() const noexcept { return KDCOM_SHM_REGION_SIZE(ring_size); }

    // Whether these sizes make a usable region of `mapped` bytes.
    bool fit(std::size_t mapped) const noexcept {
        const bool power_of_two = ring_size >= 4096 && ring_size <= (1u << 30) && (ring_size & (ring_size - 1)) == 0;
        return power_of_two && max_message > 0 && ring::footprint(max_message) <= ring_size &&
               region_size() <= mapped;
    }
};

class region {
public:
    // Host: writes a fresh header for `p` into `memory` (8-byte aligned; zeroes the counters).
    static std::error_code initialise(std::span<std::uint8_t> memory, const region_parameters& p) noexcept {
        if (!can_hold(memory, p)) return errc::shm_incompatible_region;
        const kdcom_shm_header h = header_for(p);
        // Published to the guest by whatever announces the region (a syscall, a trap), which
        // orders it; the guest does not use the region before that.
        std::memcpy(memory.data(), &h, sizeof h);
        return {};
    }

    // Whether `memory` (8-byte aligned) can hold a region of `p`.
    static bool can_hold(std::span<const std::uint8_t> memory, const region_parameters& p) noexcept {
        return p.fit(memory.size()) && reinterpret_cast<std::uintptr_t>(memory.data()) % 8 == 0;
    }
    // The header the host writes for `p`: counters zero, no request from the guest, no host peer.
    static kdcom_shm_header header_for(const region_parameters& p) noexcept {
        kdcom_shm_header h{};
        h.magic = KDCOM_SHM_MAGIC;
        h.version = KDCOM_SHM_VERSION;
        h.header_size = sizeof(kdcom_shm_header);
        h.ring_size = p.ring_size;
        h.max_message = p.max_message;
        h.generation = p.generation;
        return h;
    }

    // Reads the parameters of a region someone else initialised; one fetch of the header.
    static std::error_code read_parameters(std::span<const std::uint8_t> memory, region_parameters& out) noexcept {
        if (memory.size() < sizeof(kdcom_shm_header)) return errc::shm_incompatible_region;
        kdcom_shm_header h;
        std::memcpy(&h, memory.data(), sizeof h);
        region_parameters p{h.ring_size, h.max_message, h.generation};
        if (h.magic != KDCOM_SHM_MAGIC || h.version != KDCOM_SHM_VERSION || h.header_size != sizeof(kdcom_shm_header) ||
            !p.fit(memory.size()))
            return errc::shm_incompatible_region;
        out = p;
        return {};
    }

    // `memory` must hold a region with parameters `p` (from initialise or read_parameters) and
    // outlive this object.
    region(std::span<std::uint8_t> memory, const region_parameters& p, shm::side s) noexcept
        : inbound_(make_ring(memory, p, s == side::host ? KDCOM_SHM_RING_GUEST_TO_HOST : KDCOM_SHM_RING_HOST_TO_GUEST)),
          outbound_(make_ring(memory, p, s == side::host ? KDCOM_SHM_RING_HOST_TO_GUEST : KDCOM_SHM_RING_GUEST_TO_HOST)),
          parameters_(p) {}

    ring& inbound() noexcept { return inbound_; }    // this side consumes
    ring& outbound() noexcept { return outbound_; }  // this side produces
    const region_parameters& parameters() const noexcept { return parameters_; }

private:
    static ring make_ring(std::span<std::uint8_t> memory, const region_parameters& p, int index) noexcept {
        auto* header = reinterpret_cast<kdcom_shm_header*>(memory.data());
        std::uint8_t* data = memory.data() + sizeof(kdcom_shm_header) + static_cast<std::size_t>(index) * p.ring_size;
        ring r(&header->rings[index], data, p.ring_size, p.max_message);
        r.resynchronise();
        return r;
    }

    ring inbound_, outbound_;
    region_parameters parameters_;
};

}  // namespace kdcom::shm
