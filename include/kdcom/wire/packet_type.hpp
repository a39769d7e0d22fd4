// The PacketType field: which packets are data and which are control, and their names.
#pragma once

#include <cstdint>
#include <string_view>

namespace kdcom::wire {

// Values of the header's PacketType field. The enum has a fixed underlying type, so any 16-bit
// value read off the wire can be held, named or not.
enum class packet_type : std::uint16_t {
    unused = 0,
    state_change32 = 1,
    state_manipulate = 2,
    debug_io = 3,
    acknowledge = 4,
    resend = 5,
    reset = 6,
    state_change64 = 7,
    poll_breakin = 8,  // never travels: the kernel's "is a break-in pending?" request code
    trace_io = 9,
    control_request = 10,
    file_io = 11,
    max = 12,  // PACKET_TYPE_MAX, one past the last
};

// Types that travel under the control leader (header only).
constexpr bool is_control_type(packet_type t) noexcept {
    return t == packet_type::acknowledge || t == packet_type::resend || t == packet_type::reset;
}

// Types that travel under the data leader (header, body, trailer). UNUSED and POLL_BREAKIN never
// travel, so a frame carrying them is rejected as a false frame.
constexpr bool is_data_type(packet_type t) noexcept {
    switch (t) {
    case packet_type::state_change32:
    case packet_type::state_manipulate:
    case packet_type::debug_io:
    case packet_type::state_change64:
    case packet_type::trace_io:
    case packet_type::control_request:
    case packet_type::file_io: return true;
    default: return false;
    }
}

// The name Windows headers give a type, without the PACKET_TYPE_ prefix ("KD_STATE_CHANGE64"), or
// "UNKNOWN" for a value that has none.
constexpr std::string_view packet_type_name(packet_type t) noexcept {
    switch (t) {
    case packet_type::unused: return "UNUSED";
    case packet_type::state_change32: return "KD_STATE_CHANGE32";
    case packet_type::state_manipulate: return "KD_STATE_MANIPULATE";
    case packet_type::debug_io: return "KD_DEBUG_IO";
    case packet_type::acknowledge: return "KD_ACKNOWLEDGE";
    case packet_type::resend: return "KD_RESEND";
    case packet_type::reset: return "KD_RESET";
    case packet_type::state_change64: return "KD_STATE_CHANGE64";
    case packet_type::poll_breakin: return "KD_POLL_BREAKIN";
    case packet_type::trace_io: return "KD_TRACE_IO";
    case packet_type::control_request: return "KD_CONTROL_REQUEST";
    case packet_type::file_io: return "KD_FILE_IO";
    case packet_type::max: break;
    }
    return "UNKNOWN";
}

}  // namespace kdcom::wire
