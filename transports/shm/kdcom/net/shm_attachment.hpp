// What a guest receives when it attaches to a shm:// host (shm_link.hpp): the region, mapped and
// checked, and both doorbells. Used by the guest side of the link and by the blocking guest
// library (kdcom/guest/kd_guest.h). POSIX only, no Asio: the library kdcom::shm_attachment.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "kdcom/shm/region.hpp"

namespace kdcom::net {
namespace shm_detail {

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
    mapping& operator=(mapping&& o) noexcept {
        if (this != &o) {
            unmap();
            base_ = std::exchange(o.base_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    ~mapping() { unmap(); }
    std::span<std::uint8_t> bytes() const noexcept { return {static_cast<std::uint8_t*>(base_), size_}; }

private:
    void unmap() noexcept {
        if (base_) ::munmap(base_, size_);
        base_ = nullptr;
    }

    void* base_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace shm_detail

struct shm_attachment {
    shm_detail::mapping memory;
    shm::region_parameters parameters;
    shm_detail::unique_fd host_doorbell;   // the guest signals this one
    shm_detail::unique_fd guest_doorbell;  // and waits on this one
};

// The byte a guest sends back once it has mapped the region: the host's sign that the one guest
// slot is taken by a guest and not by a process that connected and went quiet.
inline constexpr std::uint8_t shm_ready_byte = 'R';

// Receives the host's hello and descriptors on a connected rendezvous socket and checks them
// (magic, version, the file's size, the region header) before anything is used, then answers
// with shm_ready_byte. `wait`: block until the hello arrives; otherwise the socket must be
// readable. A host that closes without a word (it already has a guest) gives
// std::errc::connection_refused.
std::error_code receive_shm_attachment(int socket, bool wait, shm_attachment& out);

// Where the rendezvous socket for shm://NAME lives: $KDCOM_SHM_DIR (or /tmp)/kdcom-shm-NAME.sock.
std::string shm_rendezvous_path(std::string_view name);

}  // namespace kdcom::net
