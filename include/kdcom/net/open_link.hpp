// Turns any parsed address into a link, choosing the transport by its kind.
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include <asio/any_io_executor.hpp>

#include "kdcom/endpoint/config.hpp"
#include "kdcom/error.hpp"
#include "kdcom/net/byte_stream.hpp"
#include "kdcom/transport/address.hpp"

namespace kdcom::net {

// Returns the link, or nullptr with `why` saying why: transport_errc::cannot_listen (a listener
// that cannot be created or bound; the detail names the socket and the system's reason) or
// transport_errc::not_on_this_platform (a transport this build does not have). `side` is our
// role, which a FIFO pair needs for its direction. If `reachable_at` is given, it receives the
// address as a peer would reach it: for tcp-listen:// with port 0, the port the listener got.
std::unique_ptr<link> open_link(const asio::any_io_executor& ex, const transport::address& address, role side,
                                failure& why, transport::address* reachable_at = nullptr);

// The endpoint configuration an address implies: its resets= option, on top of `base`.
endpoint_config config_for(const transport::address& address, endpoint_config base);

}  // namespace kdcom::net
