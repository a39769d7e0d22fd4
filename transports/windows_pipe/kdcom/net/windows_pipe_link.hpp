// Windows named pipes as KDCOM links (\\.\pipe\NAME): what Hyper-V, VMware and VirtualBox on
// Windows create for a guest's serial port, and what WinDbg opens with -k com:pipe,port=...
//
// The listener creates the pipe itself, with overlapped I/O through Asio's I/O completion port:
// - only the current user may open it (its DACL grants access to this user's SID alone), and remote
//   clients are rejected;
// - it is created as the first instance of that name, so another process cannot have squatted the
//   name first and be listening in our place;
// - one client at a time: the pipe has a single instance, so a second debugger that tries to open
//   it while one is attached gets ERROR_PIPE_BUSY at once (a clear refusal, not a corrupted
//   session); when the first leaves, the next one is accepted.
// The client opens an existing pipe; if it does not exist yet or is busy, async_open fails and a
// session with reconnect set tries again later.
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include <asio/any_io_executor.hpp>

#include "kdcom/net/byte_stream.hpp"

namespace kdcom::net {

std::unique_ptr<link> make_pipe_listener(const asio::any_io_executor& ex, std::string name, std::error_code& ec);
std::unique_ptr<link> make_pipe_client(const asio::any_io_executor& ex, std::string name);

}  // namespace kdcom::net
