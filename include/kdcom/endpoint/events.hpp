// What an endpoint tells its caller. Spans inside an event stay valid until the next call to any
// member of the endpoint that produced it: copy what must outlive that.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <variant>

#include "kdcom/wire/packet_type.hpp"

namespace kdcom {

namespace events {

// Bytes to write to the peer, in order.
struct transmit {
    enum class what : std::uint8_t { data_packet, control_packet, breakin };
    what kind = what::control_packet;
    wire::packet_type type = wire::packet_type::unused;  // for packets
    bool retransmission = false;                         // a data packet sent again

    std::span<const std::uint8_t> bytes() const noexcept {
        return frame.empty() ? std::span<const std::uint8_t>(small.data(), small_size) : frame;
    }

    // Control packets and the break-in byte travel inside the event; data packets point into the
    // endpoint's send buffer.
    std::array<std::uint8_t, 16> small{};
    std::uint8_t small_size = 0;
    std::span<const std::uint8_t> frame;
};

// A data packet from the peer, accepted and acknowledged, delivered exactly once.
struct packet_received {
    wire::packet_type type = wire::packet_type::unused;
    std::uint32_t id = 0;
    std::span<const std::uint8_t> body;
};

// The outcome of the one send in progress.
struct send_completed {
    enum class outcome : std::uint8_t {
        acknowledged,  // the peer acknowledged it (or, with implicit_ack, answered it)
        given_up,      // a droppable send ran out of retries
        cancelled,     // cancel_send()
    };
    outcome result = outcome::acknowledged;
    wire::packet_type type = wire::packet_type::unused;
    unsigned attempts = 0;  // times it was put on the wire
};

// Target: a break-in request is pending; poll_breakin() will report it.
struct breakin_pending {};

// The link was reset; both ids restarted. A data send in progress is being sent again with the
// new id (see docs/protocol.md for what an application may assume across a reset).
struct peer_reset {
    enum class cause : std::uint8_t {
        reset_packet,  // target: answered the debugger's RESET; debugger: the handshake completed
        sync_bit,      // the peer sent a packet with the SYNC bit: it restarted or resynchronised
    };
    cause why = cause::reset_packet;
};

enum class link_state : std::uint8_t {
    waiting,               // nothing exchanged yet (the state at start)
    connected,             // packets are getting through
    peer_silent,           // a send went unanswered for all its retries; still trying
    debugger_not_present,  // target: a droppable send gave up; ids were reset
};

// "peer silent" and so on, for messages.
constexpr std::string_view link_state_name(link_state s) noexcept {
    switch (s) {
    case link_state::waiting: return "waiting";
    case link_state::connected: return "connected";
    case link_state::peer_silent: return "peer silent";
    case link_state::debugger_not_present: return "debugger not present";
    }
    return "unknown";
}

struct link_changed {
    link_state state = link_state::connected;
};

}  // namespace events

using endpoint_event = std::variant<events::transmit, events::packet_received, events::send_completed,
                                    events::breakin_pending, events::peer_reset, events::link_changed>;

}  // namespace kdcom
