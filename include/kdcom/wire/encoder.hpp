// Encoding packets into a caller's buffer. No allocation; the output is complete or untouched
// beyond what the returned size says.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

#include "kdcom/error.hpp"
#include "kdcom/wire/checksum.hpp"
#include "kdcom/wire/constants.hpp"
#include "kdcom/wire/header.hpp"
#include "kdcom/wire/packet_type.hpp"

namespace kdcom::wire {

// Writes a data packet whose body is `message_header` followed by `message_data` (the two buffers
// KdSendPacket takes; the split is not visible on the wire). Returns the number of bytes written,
// data_packet_size(body size), or 0 with `ec` set:
//   not_a_data_type   `type` does not travel under the data leader;
//   body_too_large    the body exceeds 65535 bytes (callers enforce their own, lower, limits);
//   buffer_too_small  `out` is shorter than the packet.
// The id is written as given: choosing it is the endpoint's job.
inline std::size_t encode_data_packet(std::span<std::uint8_t> out, packet_type type, std::uint32_t id,
                                      std::span<const std::uint8_t> message_header,
                                      std::span<const std::uint8_t> message_data,
                                      std::error_code& ec) noexcept {
    const std::size_t body_size = message_header.size() + message_data.size();
    if (!is_data_type(type)) {
        ec = errc::not_a_data_type;
        return 0;
    }
    if (body_size > byte_count_limit) {
        ec = errc::body_too_large;
        return 0;
    }
    const std::size_t total = data_packet_size(body_size);
    if (out.size() < total) {
        ec = errc::buffer_too_small;
        return 0;
    }
    const auto body = out.subspan(header_size, body_size);
    const std::uint32_t sum = copy_and_checksum(body, message_header) +
                              copy_and_checksum(body.subspan(message_header.size()), message_data);
    const packet_header h{data_packet_leader, type, static_cast<std::uint16_t>(body_size), id, sum};
    store_header(h, out.first<header_size>());
    out[header_size + body_size] = trailer_byte;
    ec.clear();
    return total;
}

// Convenience form for a body already in one buffer.
inline std::size_t encode_data_packet(std::span<std::uint8_t> out, packet_type type, std::uint32_t id,
                                      std::span<const std::uint8_t> body,
                                      std::error_code& ec) noexcept {
    return encode_data_packet(out, type, id, body, {}, ec);
}

// Writes a 16-byte control packet (ACKNOWLEDGE, RESEND or RESET): ByteCount 0, Checksum 0, no
// trailer. Returns control_packet_size, or 0 with `ec` set to not_a_control_type or
// buffer_too_small.
inline std::size_t encode_control_packet(std::span<std::uint8_t> out, packet_type type,
                                         std::uint32_t id, std::error_code& ec) noexcept {
    if (!is_control_type(type)) {
        ec = errc::not_a_control_type;
        return 0;
    }
    if (out.size() < control_packet_size) {
        ec = errc::buffer_too_small;
        return 0;
    }
    store_header(packet_header{control_packet_leader, type, 0, id, 0}, out.first<header_size>());
    ec.clear();
    return control_packet_size;
}

}  // namespace kdcom::wire
