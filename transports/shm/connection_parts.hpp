// What the shared-memory link hands to a new connection (internal to the transport).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/local/stream_protocol.hpp>

#include "kdcom/net/shm_attachment.hpp"
#include "kdcom/net/shm_connection.hpp"

namespace kdcom::net::shm_detail {

struct connection_parts {
    asio::any_io_executor executor;
    std::span<std::uint8_t> region;  // the shared region (in `memory` if this side mapped it)
    mapping memory;                  // empty when someone else (a VMM) owns the region
    shm::region_parameters parameters;
    shm::side side = shm::side::host;
    unique_fd own_doorbell;             // eventfd this side waits on
    std::function<void()> ring_peer;    // signals the other side (an eventfd write, a VMM's interrupt)
    std::optional<asio::local::stream_protocol::socket> control;  // if any: closes when the peer process is gone
    std::chrono::steady_clock::duration stall_timeout;
    std::chrono::steady_clock::duration poll_window;
    // If set (the host of a rendezvous): the connection fails unless the peer's ready byte comes
    // on `control` within this time.
    std::optional<std::chrono::steady_clock::duration> hello_timeout;
    std::string description;
    // If set: asked at each look at the rings; true ends the connection with
    // std::errc::connection_reset (a guest that started again, in a region that outlives its boots).
    std::function<bool()> peer_restarted;
    std::function<void()> on_close;
    std::function<void()>* end_from_outside = nullptr;  // if set: receives a function that ends the connection
};

// A doorbell signal to an eventfd the function owns.
inline std::function<void()> eventfd_signal(unique_fd fd) {
    auto owned = std::make_shared<unique_fd>(std::move(fd));
    return [owned] {
        const std::uint64_t one = 1;
        // EAGAIN means the counter is saturated: the peer has a wake-up pending anyway.
        [[maybe_unused]] const auto n = ::write(owned->get(), &one, sizeof one);
    };
}

std::unique_ptr<shm_connection> make_connection(connection_parts parts);

}  // namespace kdcom::net::shm_detail
