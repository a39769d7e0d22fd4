// The rendezvous hello, private to the shm transport: the one message a host sends a guest that
// connected, with the region's descriptor and the two doorbells. Sent by shm_link.cpp (the host),
// received by shm_attachment.cpp (any guest, with or without Asio).
#pragma once

#include <sys/mman.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <system_error>

#include "kdcom/net/shm_attachment.hpp"
#include "kdcom/shm/layout.h"

namespace kdcom::net::shm_detail {

struct hello {
    std::uint32_t magic = KDCOM_SHM_MAGIC;
    std::uint32_t version = KDCOM_SHM_VERSION;
    std::uint64_t region_size = 0;
};
inline constexpr std::size_t hello_descriptors = 3;  // the region, the host's doorbell, the guest's

// The hello with room for its descriptors, as one message header for sendmsg or recvmsg.
struct hello_message {
    hello h;
    iovec iov{&h, sizeof h};
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * hello_descriptors)> control{};
    msghdr msg{};
    hello_message() {
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
    }
    hello_message(const hello_message&) = delete;
    hello_message& operator=(const hello_message&) = delete;
};

inline std::error_code last_error() { return {errno, std::generic_category()}; }

inline mapping map_region(int fd, std::size_t size, std::error_code& ec) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        ec = last_error();
        return {};
    }
    return {p, size};
}

}  // namespace kdcom::net::shm_detail
