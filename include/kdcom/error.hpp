// kdcom error codes. Every failure the library reports is a std::error_code, in a category of its
// layer: "kdcom" for the protocol core (framing, encoding, the endpoint, the shared-memory region
// and rings), "kdcom.transport" for addresses and links (transport/errors.hpp), "kdcom.capture"
// for capture files (capture/errors.hpp), and the system's for what the OS refused. Where a person
// needs more than the code says (which part of an address is wrong, which socket could not be
// bound), a `failure` carries both.
//
// Errors are values, not exceptions: the protocol core never throws. Tools and the convenience
// overloads of the Asio binding turn them into exceptions or messages at the edge.
#pragma once

#include <string>
#include <system_error>

namespace kdcom {

enum class errc {
    // Framing errors reported by the decoder. Each names a rejected candidate frame; the decoder
    // then rescans from the byte after that frame's first leader byte.
    bad_checksum = 1,          // body bytes do not sum to the header's Checksum
    bad_trailer,               // the byte after a data packet's body is not 0xAA
    byte_count_too_large,      // ByteCount exceeds the configured body limit
    unknown_packet_type,       // PacketType is not one that travels under this leader
    malformed_control_packet,  // a control packet with a non-zero ByteCount (or Checksum, decoding strictly)
    truncated_packet,          // the stream ended (or the reader gave up) inside a packet

    // Encoder errors.
    buffer_too_small,  // the caller's buffer cannot hold the encoded packet
    body_too_large,    // the body does not fit the 16-bit ByteCount field
    not_a_data_type,   // a data packet was requested with a control or unknown packet type
    not_a_control_type,

    // Endpoint request errors.
    send_in_progress,  // send() while the previous send has not completed (stop-and-wait)

    // Text input errors (hex dumps).
    invalid_hex_digit,  // a character that is neither a hex digit, whitespace nor a comment
    odd_hex_digits,     // a byte was left with only one hex digit

    // Guest shared-memory errors (the region is written by a guest that may be hostile).
    shm_incompatible_region,  // bad magic, unknown version, or sizes that do not fit the mapping
    shm_corrupt_ring,         // counters or a message header the ring cannot hold
    shm_unexpected_message,   // a message of a kind this channel does not carry
    peer_stalled,             // the peer left no room to write for longer than allowed
    shm_malformed_pdu,        // a KD PDU whose lengths or operation do not add up

    // (19 to 22 were the capture file errors, now capture::capture_errc.)

    // Added after the groups above, so that their values stay as they were.
    shm_no_ready = 23,  // a guest connected to the rendezvous and did not say it mapped the region in time
};

// The category object. Its name is "kdcom"; messages are short English sentences without a
// trailing period, suitable after "error: ".
inline const std::error_category& error_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "kdcom"; }
        std::string message(int value) const override {
            switch (static_cast<errc>(value)) {
            case errc::bad_checksum: return "bad checksum";
            case errc::bad_trailer: return "bad or missing packet trailer (expected 0xAA)";
            case errc::byte_count_too_large: return "ByteCount over the body limit";
            case errc::unknown_packet_type: return "unknown packet type for this leader";
            case errc::malformed_control_packet:
                return "control packet with non-zero ByteCount or Checksum";
            case errc::truncated_packet: return "stream ended inside a packet";
            case errc::buffer_too_small: return "output buffer too small";
            case errc::body_too_large: return "packet body too large";
            case errc::not_a_data_type: return "packet type is not a data packet type";
            case errc::not_a_control_type: return "packet type is not a control packet type";
            case errc::send_in_progress: return "a send is already in progress";
            case errc::invalid_hex_digit: return "invalid character in hex text";
            case errc::odd_hex_digits: return "odd number of hex digits";
            case errc::shm_incompatible_region:
                return "shared-memory region has a bad magic, an unknown version or impossible sizes";
            case errc::shm_corrupt_ring: return "shared-memory ring is corrupt (counters or message header)";
            case errc::shm_unexpected_message: return "unexpected message kind on this shared-memory channel";
            case errc::peer_stalled: return "peer stalled: no room to write for too long";
            case errc::shm_malformed_pdu: return "malformed KD PDU (lengths or operation do not add up)";
            case errc::shm_no_ready: return "the guest did not say it mapped the shared region in time";
            }
            return "unknown kdcom error";
        }
    };
    static const category instance;
    return instance;
}

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

// An error as a program tests it (`code`) and as a person reads it (`detail`: what was wrong with
// what, a whole sentence; empty when the code's message says it all).
struct failure {
    std::error_code code;
    std::string detail;

    explicit operator bool() const noexcept { return static_cast<bool>(code); }
    std::string message() const { return detail.empty() ? code.message() : detail; }
};

}  // namespace kdcom

template <>
struct std::is_error_code_enum<kdcom::errc> : std::true_type {};
