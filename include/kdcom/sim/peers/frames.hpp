// Whole frames as the peer models write them. The wire format is the same for everyone; what
// differs between implementations is when they send what, and how they read.
#pragma once

#include <cstdint>
#include <span>
#include <system_error>
#include <vector>

#include "kdcom/wire/encoder.hpp"

namespace kdcom::sim::peers {

inline std::vector<std::uint8_t> data_frame(wire::packet_type type, std::uint32_t id, std::span<const std::uint8_t> body) {
    std::vector<std::uint8_t> out(wire::data_packet_size(body.size()));
    std::error_code ec;
    out.resize(wire::encode_data_packet(out, type, id, body, ec));
    return out;
}

inline std::vector<std::uint8_t> control_frame(wire::packet_type type, std::uint32_t id) {
    std::vector<std::uint8_t> out(wire::control_packet_size);
    std::error_code ec;
    out.resize(wire::encode_control_packet(out, type, id, ec));
    return out;
}

inline bool is_leader_byte(std::uint8_t b) noexcept {
    return b == wire::data_leader_byte || b == wire::control_leader_byte;
}

}  // namespace kdcom::sim::peers
