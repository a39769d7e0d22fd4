// Packets kept in order in slots that keep their buffers: once a slot has held a body of a size,
// holding one of that size again allocates nothing, so a queue that cycles in steady state
// allocates nothing per packet. It grows (doubling its slots) when pushed while full; it never
// shrinks. Used for what a session holds for its application and for its sends waiting for the
// endpoint, and for the packets the bridge core holds for its guest.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "kdcom/wire/packet_type.hpp"

namespace kdcom {

// A data packet, owned.
struct received_packet {
    wire::packet_type type{};
    std::uint32_t id = 0;
    std::vector<std::uint8_t> body;
};

class packet_queue {
public:
    // `slots` slots, each with room for a body of `body_room` bytes, reserved now.
    explicit packet_queue(std::size_t slots = 0, std::size_t body_room = 0) : slots_(slots) {
        for (auto& s : slots_) s.body.reserve(body_room);
    }

    bool empty() const noexcept { return count_ == 0; }
    std::size_t size() const noexcept { return count_; }
    // Precondition for both: !empty().
    const received_packet& front() const noexcept { return slots_[head_]; }
    received_packet& front() noexcept { return slots_[head_]; }

    // Copies the packet in (`header` then `data` make its body).
    void push(wire::packet_type type, std::uint32_t id, std::span<const std::uint8_t> header,
              std::span<const std::uint8_t> data = {}) {
        if (count_ == slots_.size()) grow();
        received_packet& p = slots_[(head_ + count_) % slots_.size()];
        p.type = type;
        p.id = id;
        p.body.assign(header.begin(), header.end());
        p.body.insert(p.body.end(), data.begin(), data.end());
        ++count_;
    }

    // Removes the front packet; the reference stays valid until the next push().
    const received_packet& pop() noexcept {
        const received_packet& p = slots_[head_];
        head_ = (head_ + 1) % slots_.size();
        --count_;
        return p;
    }

    void clear() noexcept { count_ = 0; }

private:
    // Doubles the slots, keeping the packets in order at the front and every buffer.
    void grow() {
        std::vector<received_packet> bigger(std::max<std::size_t>(2 * slots_.size(), 4));
        for (std::size_t i = 0; i < slots_.size(); ++i) bigger[i] = std::move(slots_[(head_ + i) % slots_.size()]);
        slots_ = std::move(bigger);
        head_ = 0;
    }

    std::vector<received_packet> slots_;
    std::size_t head_ = 0, count_ = 0;
};

}  // namespace kdcom
