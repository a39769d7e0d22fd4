// What the bridge core asks of the code that runs it (bridge/core.hpp). Two are queries the runner
// answers at once, before it gives the core any other input: poll_breakin and read_guest_memory.
//
// Spans point into the core or into the input that caused the event, and stay valid until the next
// call to any member of the core: copy (or hand to a session, which copies) before then.
#pragma once

#include <cstdint>
#include <span>
#include <variant>

#include "kdcom/shm/kd_pdu.hpp"
#include "kdcom/wire/packet_type.hpp"

namespace kdcom::bridge {

enum class send_purpose : std::uint8_t {
    guest,      // the guest's KdSendPacket: report its end with guest_send_finished(id, ...)
    fast_path,  // a reply the host made from guest memory: nobody waits for its end
};

namespace bridge_events {

// Write this answer to the guest, as one KD PDU message, after any answer before it.
struct answer_guest {
    shm::kd_pdu pdu;
};

// Send this packet to the debugger, after any packet before it.
struct send_to_debugger {
    wire::packet_type type{};
    std::span<const std::uint8_t> header;
    std::span<const std::uint8_t> data;
    send_purpose purpose = send_purpose::guest;
    std::uint64_t id = 0;  // the guest's send: give it back to guest_send_finished()
};

// Nobody waits for the guest's send `id` any more (the guest left): cancel it if it is still
// being sent; if it ends anyway, guest_send_finished() ignores it.
struct cancel_guest_send {
    std::uint64_t id = 0;
};

// Query: is a break-in pending? Answer with breakin_polled() (the endpoint's poll_breakin()).
struct poll_breakin {};

// Query: fill `into` from guest physical memory at `address` and say how many bytes could be
// read, with guest_memory_read().
struct read_guest_memory {
    std::uint64_t address = 0;
    std::span<std::uint8_t> into;
};

}  // namespace bridge_events

using bridge_event = std::variant<bridge_events::answer_guest, bridge_events::send_to_debugger,
                                  bridge_events::cancel_guest_send, bridge_events::poll_breakin,
                                  bridge_events::read_guest_memory>;

}  // namespace kdcom::bridge
