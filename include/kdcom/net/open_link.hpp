// Turns any parsed address into a link, choosing the transport by its kind.
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include <asio/any_io_executor.hpp>

#include "kdcom/endpoint/config.hpp"
#include "kdcom/net/byte_stream.hpp"
#include "kdcom/transport/address.hpp"

namespace kdcom::net {

// Returns the link, or nullptr with `message` saying why (a listener that cannot bind, a
// transport this build does not have). `side` is our role, which a FIFO pair needs for its
// direction. If `reachable_at` is given, it receives the address as a peer would reach it: for
// tcp-listen:// with port 0, the port the listener got.
std::unique_ptr<link> open_link(const asio::any_io_executor& ex, const transport::address& address, role side,
                                std::string& message, transport::address* reachable_at = nullptr);

// The endpoint configuration an address implies: its resets= option, on top of `base`.
endpoint_config config_for(const transport::address& address, endpoint_config base);

}  // namespace kdcom::net
