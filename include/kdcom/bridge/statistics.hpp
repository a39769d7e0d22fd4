// What a bridge counted: for tools (kdcom-bridge's SIGUSR1 report) and tests; never affects
// behaviour.
#pragma once

#include <cstdint>

namespace kdcom::bridge {

struct statistics {
    std::uint64_t guest_calls = 0;       // PDUs from the guest (one per KdSendPacket/KdReceivePacket)
    std::uint64_t guest_answers = 0;     // PDUs to the guest
    std::uint64_t packets_to_debugger = 0;
    std::uint64_t packets_to_guest = 0;
    std::uint64_t packets_carried = 0;   // of those, handed over with the answer to a SEND (no RECEIVE needed)
    std::uint64_t packets_dropped = 0;   // of a type the guest was not waiting for, or past the inbox limit
    std::uint64_t fast_path_reads = 0;
    std::uint64_t resends_to_guest = 0;  // RECEIVE answered with RESEND (link reset, packet too large)
    std::uint64_t guests_attached = 0;
    std::uint64_t guest_errors = 0;      // guests dropped for a malformed PDU or a broken ring
};

}  // namespace kdcom::bridge
