// What the shared-memory link hands to a new connection (internal to the transport).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/local/stream_protocol.hpp>

#include "kdcom/net/shm_attachment.hpp"
#include "kdcom/net/shm_connection.hpp"

namespace kdcom::net::shm_detail {

struct connection_parts {
    mapping memory;
    shm::region_parameters parameters;
    shm::side side = shm::side::host;
    unique_fd own_doorbell;   // eventfd this side waits on
    unique_fd peer_doorbell;  // eventfd this side signals
    asio::local::stream_protocol::socket control;  // closes when the peer process is gone
    std::chrono::steady_clock::duration stall_timeout;
    std::chrono::steady_clock::duration poll_window;
    std::string description;
    std::function<void()> on_close;
};

std::unique_ptr<shm_connection> make_connection(connection_parts parts);

}  // namespace kdcom::net::shm_detail
