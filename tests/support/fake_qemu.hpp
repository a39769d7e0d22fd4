// QEMU's side of the ivshmem server protocol (QEMU docs/specs/ivshmem-spec), and the guest behind
// its ivshmem-doorbell device: the guest library over the region and eventfds QEMU would map and
// hand the device, for tests of kdcom's ivshmem server without QEMU.
#pragma once

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>

#include "kdcom/guest/kd_guest.h"
#include "kdcom/net/ivshmem_link.hpp"

namespace kdcom::test {

// One message of the server: its int64 and the descriptor that came with it (-1 if none).
struct server_message {
    std::int64_t value = 0;
    int fd = -1;
};

// QEMU's side of the ivshmem server protocol, and the guest behind its device.
class fake_qemu {
public:
    explicit fake_qemu(const std::string& path) {
        socket_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        connected_ = ::connect(socket_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~fake_qemu() {
        if (memory_ != MAP_FAILED) ::munmap(memory_, size_);
        for (int fd : {socket_, host_bell_, own_interrupt_})
            if (fd >= 0) ::close(fd);
    }

    // The next message, or nothing if the server closed or said nothing within 5 s.
    std::optional<server_message> receive() {
        pollfd p{socket_, POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) return std::nullopt;
        std::uint8_t raw[8];
        iovec iov{raw, sizeof raw};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        if (::recvmsg(socket_, &msg, MSG_CMSG_CLOEXEC) != 8) return std::nullopt;
        server_message m;
        for (int i = 7; i >= 0; --i) m.value = static_cast<std::int64_t>((static_cast<std::uint64_t>(m.value) << 8) | raw[i]);
        if (cmsghdr* c = CMSG_FIRSTHDR(&msg); c && c->cmsg_type == SCM_RIGHTS) std::memcpy(&m.fd, CMSG_DATA(c), sizeof m.fd);
        return m;
    }

    // What QEMU checks at start: version 0, its id, the memory (a power of two in size), then the
    // host's vector and its own. Maps the memory.
    void handshake() {
        ASSERT_TRUE(connected_);
        const auto version = receive(), id = receive(), memory = receive(), host = receive(), own = receive();
        ASSERT_TRUE(version && id && memory && host && own) << "the server said less than the handshake";
        EXPECT_EQ(version->value, 0);
        EXPECT_EQ(version->fd, -1);
        EXPECT_EQ(id->value, net::ivshmem_guest_peer);
        EXPECT_EQ(id->fd, -1);
        EXPECT_EQ(memory->value, -1);
        EXPECT_EQ(host->value, net::ivshmem_host_peer);
        EXPECT_EQ(own->value, net::ivshmem_guest_peer);
        ASSERT_GE(memory->fd, 0);
        ASSERT_GE(host->fd, 0);
        ASSERT_GE(own->fd, 0);
        host_bell_ = host->fd;
        own_interrupt_ = own->fd;
        struct stat st {};
        ASSERT_EQ(::fstat(memory->fd, &st), 0);
        size_ = static_cast<std::size_t>(st.st_size);
        EXPECT_EQ(size_ & (size_ - 1), 0u) << "QEMU aborts on a size that is not a power of two";
        EXPECT_NE(::ftruncate(memory->fd, 4096), 0) << "the memory must be sealed against shrinking";
        memory_ = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, memory->fd, 0);
        ::close(memory->fd);
        ASSERT_NE(memory_, MAP_FAILED);
    }

    // The guest library over this device, as a guest kernel boots: it asks for a new generation.
    kdcom_guest* boot_guest() {
        const kdcom_guest_channel channel{memory_, size_, this, ring_host, sleep, nullptr, nullptr, 1, 5000};
        char error[256] = {};
        kdcom_guest* g = kdcom_guest_open(&channel, error, sizeof error);
        EXPECT_TRUE(g) << error;
        return g;
    }

    // The guest signals the host (its Doorbell write: QEMU writes the host's eventfd).
    void ring() { ring_host(this); }
    std::span<std::uint8_t> memory() { return {static_cast<std::uint8_t*>(memory_), size_}; }
    void quit() {
        ::close(socket_);
        socket_ = -1;
    }

private:
    static void ring_host(void* context) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto n = ::write(static_cast<fake_qemu*>(context)->host_bell_, &one, sizeof one);
    }
    // The guest's interrupt (MSI-X vector 0); the socket's end means the server is gone.
    static int sleep(void* context, const char** why) {
        auto& q = *static_cast<fake_qemu*>(context);
        pollfd fds[2] = {{q.own_interrupt_, POLLIN, 0}, {q.socket_, POLLIN, 0}};
        if (::poll(fds, 2, 10'000) <= 0 || fds[1].revents) {
            *why = "the ivshmem server is gone";
            return -1;
        }
        std::uint64_t count;
        [[maybe_unused]] const auto n = ::read(q.own_interrupt_, &count, sizeof count);
        return 0;
    }

    int socket_ = -1, host_bell_ = -1, own_interrupt_ = -1;
    bool connected_ = false;
    void* memory_ = MAP_FAILED;
    std::size_t size_ = 0;
};

}  // namespace kdcom::test
