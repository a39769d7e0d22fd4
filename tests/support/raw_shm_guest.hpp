// A guest that attaches to a shm:// host by hand, without the library's checks, so that a test can
// do to the region what a buggy or hostile guest would: write anything anywhere, ring the host's
// doorbell at will, or vanish. Blocking and minimal on purpose.
#pragma once

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>

#include "kdcom/net/shm_link.hpp"

namespace kdcom::test {

struct raw_shm_guest {
    int socket = -1, memory = -1, host_bell = -1, guest_bell = -1;
    std::uint8_t* base = nullptr;
    std::size_t size = 0;

    explicit raw_shm_guest(const std::string& name) {
        socket = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        const std::string path = net::shm_rendezvous_path(name);
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        if (::connect(socket, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            throw std::runtime_error("raw guest: connect failed");
    }
    // Receives the region and doorbells (blocks until the host has accepted this guest).
    void attach() {
        struct {
            std::uint32_t magic, version;
            std::uint64_t region_size;
        } hello{};
        iovec iov{&hello, sizeof hello};
        alignas(cmsghdr) char control[CMSG_SPACE(3 * sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        if (::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC) != sizeof hello) throw std::runtime_error("raw guest: no hello");
        int fds[3];
        std::memcpy(fds, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof fds);
        memory = fds[0];
        host_bell = fds[1];
        guest_bell = fds[2];
        size = hello.region_size;
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, memory, 0);
        if (p == MAP_FAILED) throw std::runtime_error("raw guest: mmap failed");
        base = static_cast<std::uint8_t*>(p);
    }
    std::span<std::uint8_t> region() const { return {base, size}; }
    void ring_host() const {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(host_bell, &one, sizeof one);
    }
    ~raw_shm_guest() {
        if (base) ::munmap(base, size);
        for (int fd : {socket, memory, host_bell, guest_bell})
            if (fd >= 0) ::close(fd);
    }
};

}  // namespace kdcom::test
