// Guest shared memory between processes, as a link (the address shm://NAME).
//
// In a VMM the guest's memory and its trap are the channel. Between two processes on this machine
// the host side (shm://NAME) plays the VMM: it listens on a rendezvous socket (0600, in
// $KDCOM_SHM_DIR or /tmp, named kdcom-shm-NAME.sock) and, for each guest that connects, creates a
// fresh region in a sealed memfd (it cannot be shrunk under the host's feet), initialises it, makes
// an eventfd doorbell for each side, and passes the three descriptors over the socket. The guest
// side (shm://NAME?guest) connects, receives them, checks the region header and maps it. The socket
// then only tells each side when the other process is gone.
//
// The host accepts one guest at a time (others are refused until it leaves, as with a debugger
// listener) and treats the region as hostile; see shm_connection.hpp. Every stream either side
// opens is a shm_connection.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include <asio/any_io_executor.hpp>

#include "kdcom/net/shm_attachment.hpp"  // shm_rendezvous_path
#include "kdcom/net/shm_connection.hpp"
#include "kdcom/net/socket_link.hpp"

namespace kdcom::net {

struct shm_options {
    shm::region_parameters region;  // the host's choice of sizes (the guest takes what it is given)
    // How long a send may find the peer's ring full before failing with errc::peer_stalled.
    std::chrono::steady_clock::duration stall_timeout = std::chrono::seconds(5);
    // After a message moves, how long to keep looking at the rings (by re-posting a check on the
    // io_context, so other work goes on) before going to sleep on the doorbell. While a side polls,
    // the other sends it no signals: a conversation in full swing costs no system calls for
    // doorbells, as KVM's halt polling does for vCPUs. Zero: sleep at once.
    std::chrono::steady_clock::duration poll_window = std::chrono::microseconds(200);
    // Host: how long a guest that connected to the rendezvous has to say it mapped the region
    // before it is closed and the slot goes to the next guest.
    std::chrono::steady_clock::duration hello_timeout = std::chrono::seconds(2);
};

std::unique_ptr<listener> make_shm_host(const asio::any_io_executor& ex, const std::string& name, const shm_options& options,
                                        std::error_code& ec);
std::unique_ptr<link> make_shm_guest(const asio::any_io_executor& ex, const std::string& name,
                                     const shm_options& options = {});

}  // namespace kdcom::net
