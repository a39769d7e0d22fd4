// How an endpoint behaves: its role and every rule on which real peers differ.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>

#include "kdcom/wire/constants.hpp"

namespace kdcom {

// Time as the endpoint sees it: a duration since an epoch the caller chooses (a steady clock's
// time_since_epoch(), or virtual time in a simulation). It must never go backwards.
using timestamp = std::chrono::nanoseconds;

// The earliest of some times, nullopt standing for "never": how a deadline() combines its parts.
constexpr std::optional<timestamp> earliest(std::initializer_list<std::optional<timestamp>> times) noexcept {
    std::optional<timestamp> first;
    for (const auto& t : times)
        if (t && (!first || *t < *first)) first = t;
    return first;
}

// Which end of the link this is.
enum class role {
    target,    // the debuggee, as kdcom.dll plays it (and a VMM plugin on the guest's behalf)
    debugger,  // the WinDbg/kd side
};

struct endpoint_config {
    kdcom::role role = role::target;

    // Largest body sent or accepted. Windows uses 4000 (PACKET_MAX_SIZE); raise it for peers that
    // send more, up to 65535.
    std::size_t max_body = wire::default_max_body;

    // How long a sent data packet waits for its ACK before it is sent again: adaptive, as TCP's
    // retransmission timer (RFC 6298). It starts at `ack_timeout`; each ACK of a packet sent once
    // updates a smoothed round-trip time and its variation, and the timeout becomes
    // SRTT + 4 * RTTVAR, kept within [ack_timeout_min, ack_timeout_max]. A timeout doubles it for
    // the next attempt (up to the ceiling). A quiet link thus stops retransmitting needlessly (Xen's
    // kdd executes a retransmitted request twice) and a lossy one recovers in a few round trips.
    // Set ack_timeout_min = ack_timeout_max for a fixed timeout.
    timestamp ack_timeout = std::chrono::seconds(1);
    timestamp ack_timeout_min = std::chrono::milliseconds(50);
    timestamp ack_timeout_max = std::chrono::seconds(2);
    // How long the bytes of a packet may stop arriving in the middle of it before the receiver gives
    // up on it (and asks for a resend if it was a data packet).
    timestamp read_timeout = std::chrono::seconds(1);

    // Attempts before a send is declared unanswered: `initial_retries` until the first packet has
    // been acknowledged (so a machine without a debugger boots quickly), then `retries` (the
    // KD_CONTEXT count; 20 in Windows). An unanswered droppable send gives up; any other send
    // reports the peer silent and keeps trying. The count starts again whenever the peer shows it
    // is there (any valid packet from it): a droppable send is given up only by a peer that is
    // absent, never by one that is busy resynchronising.
    unsigned initial_retries = 5;
    unsigned retries = 20;

    // Debugger: run the reset handshake when the endpoint starts, sending RESET every
    // `reset_interval` until the target answers. False is WinDbg's `resets=0`: then nothing, not
    // even a cancelled send, starts a handshake.
    bool send_resets = true;
    timestamp reset_interval = std::chrono::seconds(1);
    // Debugger: while awaiting the answer, a data packet from the target means it is inside its
    // receive loop waiting for an ACK, the one moment some targets (ReactOS) read a RESET: send
    // RESET again at once, at most once per `reset_on_data_interval`.
    timestamp reset_on_data_interval = std::chrono::milliseconds(100);
    // Debugger: the id every RESET carries. 0, as radare2 and ReactOS use: Xen's kdd answers no
    // other. Any id is accepted back.
    std::uint32_t reset_id = 0;

    // While waiting for an ACK, take the peer's next data packet as proof that ours arrived. A
    // target takes any data packet (Windows, ReactOS and VirtualKD do: a debugger only sends in
    // answer). A debugger takes only the reply to its request (a STATE_MANIPULATE with the same
    // ApiNumber; for a Continue, which has no reply, a state change): a target sends state changes
    // and prints on its own. Turn it off for independent streams in both directions.
    bool implicit_ack = true;

    // Target: after answering a RESET, drop whatever input is already buffered (stale RESETs
    // queued on a pipe would otherwise bounce back and forth; VirtualKD and nokd do the same).
    bool drop_input_on_reset = true;
    // Target: ignore a repeat of the RESET it answered last, if it arrives within this long and
    // the debugger has sent valid packets since. Off (0) by default: a debugger that always uses
    // the same RESET id (pykdclient, WinDbg) would wait for ever on its second handshake. RESETs
    // cannot bounce anyway: a debugger does not answer them, and input buffered behind a RESET is
    // dropped.
    timestamp stale_reset_window{};

    // Target: honour a break-in byte only if a leader byte, another 'b' or nothing follows it, as
    // Windows does, so that a stray 'b' in line noise does not stop the kernel.
    bool strict_breakin = true;

    // Whether a TRACE_IO send may be dropped when unanswered (some implementations do).
    bool trace_io_droppable = true;
};

}  // namespace kdcom
