// kdcom as QEMU's ivshmem server, against a fake QEMU that speaks the server protocol (QEMU
// docs/specs/ivshmem-spec) and plays its guest too: the guest library over the region and
// eventfds QEMU would hand its ivshmem-doorbell device. CI runs the real QEMU in
// scripts/check-qemu.sh; these cover the server's rules without it: the handshake, guest reboots
// (generations), a QEMU that leaves or quits at the handshake, a second QEMU turned away, and a
// guest that scribbles over the region.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <future>
#include <thread>

#include "kdcom/guest/kd_guest.h"
#include "kdcom/net/ivshmem_link.hpp"
#include "kdcom/shm/generation.hpp"
#include "support/kd_messages.hpp"
#include "support/running_bridge.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;

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
        std::uint8_t bytes[8];
        iovec iov{bytes, sizeof bytes};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        if (::recvmsg(socket_, &msg, MSG_CMSG_CLOEXEC) != 8) return std::nullopt;
        server_message m;
        for (int i = 7; i >= 0; --i) m.value = static_cast<std::int64_t>((static_cast<std::uint64_t>(m.value) << 8) | bytes[i]);
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

// The bridge with an ivshmem server as its guest side, and a debugger session.
struct ivshmem_bridge : running_bridge {
    ivshmem_bridge()
        : running_bridge([](asio::io_context& context, const scratch_dir& d) {
              std::error_code ec;
              auto server = net::make_ivshmem_server(context.get_executor(), d.path + "/ivshmem.sock", {}, ec);
              if (!server) throw std::system_error(ec);
              return server;
          }) {}
    std::string socket() const { return dir.path + "/ivshmem.sock"; }

    // Waits up to 10 s for the bridge's statistics to satisfy `f`.
    template <class F>
    bool eventually(F f) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            if (f(stats())) return true;
            std::this_thread::sleep_for(2ms);
        }
        return f(stats());
    }

    // The guest reports a breakpoint (KdSendPacket, blocking until the debugger acknowledged it)
    // and the debugger receives it.
    void guest_reports_a_stop(kdcom_guest* g) {
        std::promise<net::received_packet> at_debugger;
        on_io([&] {
            debugger->async_receive([&](std::error_code ec, net::received_packet p) {
                if (!ec) at_debugger.set_value(std::move(p));
            });
        });
        const bytes state_change = breakpoint_state_change();
        EXPECT_EQ(kdcom_guest_send_packet(g, static_cast<std::uint16_t>(wire::packet_type::state_change64), state_change.data(),
                                          static_cast<std::uint16_t>(state_change.size()), nullptr, 0),
                  KDCOM_GUEST_SENT)
            << kdcom_guest_error(g);
        auto f = at_debugger.get_future();
        ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
        EXPECT_EQ(f.get().body, state_change);
    }
};

TEST(IvshmemServer, AGuestThatRebootsIsServedAgainWithTheDebuggerStillAttached) {
    ivshmem_bridge b;
    fake_qemu qemu(b.socket());
    qemu.handshake();
    for (std::uint32_t boot = 1; boot <= 2; ++boot) {
        kdcom_guest* g = qemu.boot_guest();
        ASSERT_TRUE(g);
        EXPECT_TRUE(shm::generation::served(qemu.memory(), boot)) << "each boot is a new generation";
        EXPECT_EQ(shm::generation::host_peer(qemu.memory()), net::ivshmem_host_peer);
        ASSERT_TRUE(b.eventually([&](const bridge::statistics& s) { return s.guests_attached == boot; }));
        b.guest_reports_a_stop(g);
        kdcom_guest_detach(g);  // the machine resets: nothing tells the host but the next boot
    }
    EXPECT_EQ(b.stats().guest_errors, 0u) << "a reboot is not misbehaviour";
}

TEST(IvshmemServer, AQemuThatExitsEndsItsGuestAndTheNextQemuIsServed) {
    ivshmem_bridge b;
    {
        fake_qemu qemu(b.socket());
        qemu.handshake();
        kdcom_guest* g = qemu.boot_guest();
        ASSERT_TRUE(g);
        b.guest_reports_a_stop(g);
        kdcom_guest_detach(g);
        qemu.quit();
    }
    fake_qemu next(b.socket());
    next.handshake();
    kdcom_guest* g = next.boot_guest();
    ASSERT_TRUE(g);
    EXPECT_TRUE(shm::generation::served(next.memory(), 1)) << "a new VM starts from the first generation";
    ASSERT_TRUE(b.eventually([](const bridge::statistics& s) { return s.guests_attached == 2; }));
    b.guest_reports_a_stop(g);
    kdcom_guest_detach(g);
}

TEST(IvshmemServer, AQemuThatQuitsAtTheHandshakeOrComesSecondDoesNotBlockTheServer) {
    ivshmem_bridge b;
    {
        // QEMU stops at start when the server's version is not its own: it reads one message
        // and closes.
        fake_qemu wrong_version(b.socket());
        ASSERT_TRUE(wrong_version.receive());
    }
    fake_qemu qemu(b.socket());
    qemu.handshake();
    {
        fake_qemu second(b.socket());  // one VM at a time: this one hears nothing and is closed
        EXPECT_FALSE(second.receive());
    }
    kdcom_guest* g = qemu.boot_guest();
    ASSERT_TRUE(g);
    b.guest_reports_a_stop(g);
    kdcom_guest_detach(g);
}

TEST(IvshmemServer, AGuestThatScribblesOverTheRegionIsDroppedAndItsNextBootServed) {
    ivshmem_bridge b;
    fake_qemu qemu(b.socket());
    qemu.handshake();
    kdcom_guest* g = qemu.boot_guest();
    ASSERT_TRUE(g);
    ASSERT_TRUE(b.eventually([](const bridge::statistics& s) { return s.guests_attached == 1; }));
    kdcom_guest_detach(g);

    // Garbage over the header's sizes and the counters of the ring toward the host, then a signal.
    auto* header = reinterpret_cast<kdcom_shm_header*>(qemu.memory().data());
    std::atomic_ref<std::uint32_t>(header->ring_size).store(7);
    std::atomic_ref<std::uint32_t>(header->max_message).store(0xFFFFFFFFu);
    std::atomic_ref<std::uint32_t>(header->rings[KDCOM_SHM_RING_GUEST_TO_HOST].head).store(3);
    qemu.ring();
    ASSERT_TRUE(b.eventually([](const bridge::statistics& s) { return s.guest_errors == 1; }))
        << "the scribbler is dropped";

    // Its next boot gets a fresh region, with the host's sizes, not the scribbled ones.
    g = qemu.boot_guest();
    ASSERT_TRUE(g);
    EXPECT_NE(std::atomic_ref<std::uint32_t>(header->ring_size).load(), 7u);
    ASSERT_TRUE(b.eventually([](const bridge::statistics& s) { return s.guests_attached == 2; }));
    b.guest_reports_a_stop(g);
    kdcom_guest_detach(g);
}

TEST(IvshmemServer, AGuestWithNoServerWaitingGivesUpOnItsGenerationWithAReason) {
    // A region nobody serves: the guest's request for a generation times out with a message.
    std::vector<std::uint64_t> pages(8192);
    const kdcom_guest_channel channel{pages.data(), pages.size() * 8, nullptr, [](void*) {}, nullptr, nullptr, nullptr, 1, 50};
    char error[256] = {};
    EXPECT_EQ(kdcom_guest_open(&channel, error, sizeof error), nullptr);
    EXPECT_NE(std::string(error).find("did not set up generation 1"), std::string::npos) << error;
}

}  // namespace
