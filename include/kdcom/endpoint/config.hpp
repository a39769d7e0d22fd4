// How an endpoint behaves: its role and every rule on which real peers differ.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "kdcom/wire/constants.hpp"

namespace kdcom {

// Time as the endpoint sees it: a duration since an epoch the caller chooses (a steady clock's
// time_since_epoch(), or virtual time in a simulation). It must never go backwards.
using timestamp = std::chrono::nanoseconds;

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

    // How long a sent data packet waits for its ACK before it is sent again.
    timestamp ack_timeout = std::chrono::seconds(1);
    // How long the bytes of a packet may stop arriving in the middle of it before the receiver gives
    // up on it (and asks for a resend if it was a data packet).
    timestamp read_timeout = std::chrono::seconds(1);

    // Attempts before a send is declared unanswered: `initial_retries` until the first packet has
    // been acknowledged (so a machine without a debugger boots quickly), then `retries` (the
    // KD_CONTEXT count; 20 in Windows). An unanswered droppable send gives up; any other send
    // reports the peer silent and keeps trying.
    unsigned initial_retries = 5;
    unsigned retries = 20;

    // Debugger: run the reset handshake when the endpoint starts, sending RESET every
    // `reset_interval` until the target answers. False is WinDbg's `resets=0`.
    bool send_resets = true;
    timestamp reset_interval = std::chrono::seconds(1);
    // Debugger: the id of the first handshake's RESETs; each later handshake adds one. A kdcom
    // target echoes it in its answer, which lets the debugger ignore late answers to an earlier
    // handshake; other targets answer with an id of their own (0 for ReactOS), which must not fall
    // among ours, hence a default away from 0. Distinct values per debugger process also let a
    // kdcom target tell a new debugger's RESET from a stale repeat at once.
    std::uint32_t first_reset_id = 0x8080;

    // While waiting for an ACK, take the peer's next data packet as proof that ours arrived
    // (Windows, ReactOS and VirtualKD do). Only sound when traffic alternates, as KD's does
    // (request, then reply): turn it off for independent streams in both directions.
    bool implicit_ack = true;

    // Target: after answering a RESET, drop whatever input is already buffered (stale RESETs
    // queued on a pipe would otherwise bounce back and forth; VirtualKD and nokd do the same).
    bool drop_input_on_reset = true;
    // Target: ignore a repeat of the RESET it answered last, if it arrives within this long and
    // the debugger has sent valid packets since (so it cannot be waiting for the answer).
    timestamp stale_reset_window = std::chrono::seconds(2);

    // Target: honour a break-in byte only if a leader byte, another 'b' or nothing follows it, as
    // Windows does, so that a stray 'b' in line noise does not stop the kernel.
    bool strict_breakin = true;

    // Whether a TRACE_IO send may be dropped when unanswered (some implementations do).
    bool trace_io_droppable = true;
};

}  // namespace kdcom
