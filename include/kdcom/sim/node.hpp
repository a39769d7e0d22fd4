// Anything that talks KDCOM over a byte stream, as the simulator sees it: bytes and time in,
// writes out. kdcom's own endpoints (wrapped with an application) and the models of other
// programs in sim/peers/ are nodes, so any two can be joined by a faulty link in virtual time
// (sim::duplex) and tested against each other without I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <span>
#include <vector>

#include "kdcom/endpoint/config.hpp"

namespace kdcom::sim {

class node {
public:
    virtual ~node() = default;

    // Bytes from the peer, as one read.
    virtual void receive(std::span<const std::uint8_t> bytes, timestamp now) = 0;
    // The passage of time: called at or after deadline().
    virtual void on_time(timestamp now) = 0;
    // When on_time() next has work to do, if ever.
    virtual std::optional<timestamp> deadline() const = 0;
    // Called once before anything else, at the node's start time.
    virtual void start(timestamp now) { on_time(now); }

    // What the node wrote since the last call, one entry per write() (a packet, an ACK, a
    // break-in byte): the link applies its per-write faults to each.
    std::vector<std::vector<std::uint8_t>> take_writes() { return std::exchange(writes_, {}); }

protected:
    void write(std::span<const std::uint8_t> bytes) { writes_.emplace_back(bytes.begin(), bytes.end()); }

private:
    std::vector<std::vector<std::uint8_t>> writes_;
};

}  // namespace kdcom::sim
