// Attaching to shm://NAME as a guest from a test, on the test's own io_context: runs it until the
// host has handed over the region or `deadline` passes.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <asio/io_context.hpp>

#include "kdcom/net/shm_connection.hpp"
#include "kdcom/net/shm_link.hpp"

namespace kdcom::test {

// The guest's connection, or nullptr if the host did not take the guest in time (it had not let
// the last one go, or is not there). `link` keeps the guest link the connection came from.
inline std::unique_ptr<net::shm_connection> open_shm_guest(asio::io_context& io, const std::string& name,
                                                           std::unique_ptr<net::link>& link,
                                                           std::chrono::steady_clock::time_point deadline) {
    link = net::make_shm_guest(io.get_executor(), name);
    std::unique_ptr<net::byte_stream> stream;
    bool opened = false;
    link->async_open([&](std::error_code, std::unique_ptr<net::byte_stream> s) {
        stream = std::move(s);
        opened = true;
    });
    while (!opened && std::chrono::steady_clock::now() < deadline) io.run_one_for(std::chrono::milliseconds(5));
    if (!opened) {
        link->close();
        io.poll();  // the cancelled open completes here, before `stream` goes out of scope
    }
    auto* guest = dynamic_cast<net::shm_connection*>(stream.get());  // every shm guest stream is one
    if (!guest) return nullptr;
    stream.release();
    return std::unique_ptr<net::shm_connection>(guest);
}

}  // namespace kdcom::test
