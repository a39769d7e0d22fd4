// What the decoder reports. Every byte of the stream ends up in exactly one data_packet,
// control_packet, breakin or garbage event; framing_error events are diagnostics about a rejected
// candidate frame whose bytes are then rescanned (and so are accounted for by later events).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <variant>

#include "kdcom/wire/header.hpp"

namespace kdcom::decode {

// A valid data packet: data leader, a data packet type, ByteCount within the limit, matching
// checksum, 0xAA trailer. The id is not judged here (that is the endpoint's job).
struct data_packet {
    std::uint64_t offset = 0;  // stream offset of the first leader byte
    wire::packet_header header;
    std::span<const std::uint8_t> body;  // valid until the next call on the decoder
};

// A valid control packet: control leader, ACKNOWLEDGE/RESEND/RESET, ByteCount 0, Checksum 0.
struct control_packet {
    std::uint64_t offset = 0;
    wire::packet_header header;
};

// A break-in byte ('b') seen between packets. Whether the receiver honours it is the endpoint's
// policy; the decoder reports every one.
struct breakin {
    std::uint64_t offset = 0;
};

// A run of bytes that belong to no packet. Reported when the run ends (before the next packet,
// break-in or error, or on finish()), so runs are the same whatever the chunking.
struct garbage {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

// A candidate frame (a complete leader) that was rejected. The decoder resumes scanning at
// offset + 1, so anything that starts inside the rejected bytes is still found.
struct framing_error {
    std::uint64_t offset = 0;  // the first leader byte
    std::error_code error;     // kdcom::errc::bad_checksum, bad_trailer, ...
    std::uint8_t leader_byte = 0;  // 0x30 (data) or 0x69 (control)
    bool has_header = false;       // whether `header` was read whole
    wire::packet_header header;
    std::size_t frame_bytes = 0;  // bytes of the candidate examined (for a truncated frame: present)
    // Whether the whole claimed body and trailer were read (bad_checksum, bad_trailer): then
    // `body` is the claimed body and `body_checksum` the checksum it actually has.
    bool has_body = false;
    std::span<const std::uint8_t> body;
    std::uint32_t body_checksum = 0;
};

using event = std::variant<data_packet, control_packet, breakin, garbage, framing_error>;

// Stream offset of the first byte an event is about.
inline std::uint64_t offset_of(const event& e) noexcept {
    return std::visit([](const auto& v) { return v.offset; }, e);
}

}  // namespace kdcom::decode
