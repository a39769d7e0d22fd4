// What the shared-memory link hands to a new connection (internal to the transport).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/local/stream_protocol.hpp>

#include "kdcom/net/shm_connection.hpp"

namespace kdcom::net::shm_detail {

// An owned descriptor.
class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        reset(std::exchange(o.fd_, -1));
        return *this;
    }
    ~unique_fd() { reset(); }
    int get() const noexcept { return fd_; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }
    explicit operator bool() const noexcept { return fd_ >= 0; }

private:
    int fd_ = -1;
};

// An owned shared mapping of the region.
class mapping {
public:
    mapping() = default;
    mapping(void* base, std::size_t size) noexcept : base_(base), size_(size) {}
    mapping(mapping&& o) noexcept : base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    mapping& operator=(mapping&&) = delete;
    ~mapping() {
        if (base_) ::munmap(base_, size_);
    }
    std::span<std::uint8_t> bytes() const noexcept { return {static_cast<std::uint8_t*>(base_), size_}; }

private:
    void* base_ = nullptr;
    std::size_t size_ = 0;
};

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
