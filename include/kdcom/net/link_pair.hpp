// Both ends of one connection of a chosen kind, made in one process: a target's end (a listener
// where the kind has one) and a debugger's. For tools that run the two sides of a session side by
// side (kdcom-replay, simulators) and for tests: every transport exercised the same way.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <asio/any_io_executor.hpp>

#include "kdcom/net/byte_stream.hpp"
#include "kdcom/transport/address.hpp"

namespace kdcom::net {

class listener;

enum class pair_kind {
    memory,       // in process, no operating-system object
    tcp,          // 127.0.0.1, a free port
    unix_socket,  // a socket file in a private temporary directory
    fifo,         // two FIFOs there (QEMU's pipe: convention)
    serial_pty,   // a pseudo-terminal: the target opens the slave as a serial port
    shm,          // guest shared memory: the target is the host side, as in the VMM bridge
};

// "mem", "tcp", "unix", "fifo", "serial", "shm", and back.
std::string_view pair_kind_name(pair_kind k);
std::optional<pair_kind> parse_pair_kind(std::string_view name);

class link_pair {
public:
    // Makes the pair on `ex`, or returns nullptr with `ec` set (no free port, no pty, ...).
    // Windows builds have memory and tcp only (others: ec = operation_not_supported).
    static std::unique_ptr<link_pair> make(const asio::any_io_executor& ex, pair_kind kind, std::error_code& ec);
    ~link_pair();
    link_pair(const link_pair&) = delete;
    link_pair& operator=(const link_pair&) = delete;

    // Taken by whoever runs each side; the pair keeps what they need (the pty master, the
    // directory of the socket files) until it is destroyed, which must be after both links.
    std::unique_ptr<link> target, debugger;
    listener* target_listener = nullptr;  // for the socket and shm kinds: the target's listener
    // Where another debugger would connect (unix://PATH, tcp://127.0.0.1:PORT, fifo://BASE,
    // serial://PTY, shm://NAME?guest); for memory, nothing (a default address).
    transport::address debugger_address;

private:
    link_pair() = default;
    std::string directory_;
    int pty_master_ = -1;
};

}  // namespace kdcom::net
