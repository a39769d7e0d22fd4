// kdcom as QEMU's ivshmem server, against a fake QEMU that speaks the server protocol (QEMU
// docs/specs/ivshmem-spec) and plays its guest too: the guest library over the region and
// eventfds QEMU would hand its ivshmem-doorbell device. CI runs the real QEMU in
// scripts/check-qemu.sh; these cover the server's rules without it: the handshake, guest reboots
// (generations), a QEMU that leaves or quits at the handshake, a second QEMU turned away, and a
// guest that scribbles over the region.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "kdcom/guest/kd_guest.h"
#include "kdcom/net/ivshmem_link.hpp"
#include "kdcom/shm/generation.hpp"
#include "support/fake_qemu.hpp"
#include "support/kd_messages.hpp"
#include "support/running_bridge.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;

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

};

// The guest reports a breakpoint (KdSendPacket, blocking until the debugger acknowledged it)
// and the bridge's debugger receives it.
void guest_reports_a_stop(running_bridge& b, kdcom_guest* g) {
    std::promise<net::received_packet> at_debugger;
    b.on_io([&] {
        b.debugger->async_receive([&](std::error_code ec, net::received_packet p) {
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
        guest_reports_a_stop(b, g);
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
        guest_reports_a_stop(b, g);
        kdcom_guest_detach(g);
        qemu.quit();
    }
    fake_qemu next(b.socket());
    next.handshake();
    kdcom_guest* g = next.boot_guest();
    ASSERT_TRUE(g);
    EXPECT_TRUE(shm::generation::served(next.memory(), 1)) << "a new VM starts from the first generation";
    ASSERT_TRUE(b.eventually([](const bridge::statistics& s) { return s.guests_attached == 2; }));
    guest_reports_a_stop(b, g);
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
    guest_reports_a_stop(b, g);
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
    guest_reports_a_stop(b, g);
    kdcom_guest_detach(g);
}

// Descriptors this process has open.
std::size_t open_descriptors() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

TEST(IvshmemServer, AGuestThatAsksForGenerationsWithoutEndCostsTheHostNothingThatAccumulates) {
    ivshmem_bridge b;
    struct stat st {};
    ASSERT_EQ(::stat(b.socket().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "only this user may attach a VM";
    fake_qemu qemu(b.socket());
    qemu.handshake();
    kdcom_guest_detach(qemu.boot_guest());
    ASSERT_TRUE(b.eventually([](const bridge::statistics& s) { return s.guests_attached == 1; }));
    const std::size_t descriptors = open_descriptors();
    constexpr std::uint32_t boots = 300;
    for (std::uint32_t boot = 2; boot <= boots; ++boot) {
        kdcom_guest* g = qemu.boot_guest();  // each waits until its generation is served
        ASSERT_TRUE(g) << boot;
        kdcom_guest_detach(g);
    }
    ASSERT_TRUE(b.eventually([](const bridge::statistics& s) { return s.guests_attached == boots; }));
    EXPECT_LE(open_descriptors(), descriptors + 2) << "each generation's descriptors and mapping are given back";
    kdcom_guest* g = qemu.boot_guest();  // and the next boot is served as the first was
    ASSERT_TRUE(g);
    guest_reports_a_stop(b, g);
    kdcom_guest_detach(g);
}

// ivshmem-plain: the region is a file both map, and both poll (no doorbells).
TEST(IvshmemPlain, AGuestPollingAMemoryFileIsServedAndServedAgainAfterAReboot) {
    std::string file;
    running_bridge b([&](asio::io_context& context, const scratch_dir& d) {
        file = d.path + "/kd.mem";
        std::error_code ec;
        auto link = net::make_ivshmem_plain(context.get_executor(), file, {}, ec);
        if (!link) throw std::system_error(ec);
        return link;
    });
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(st.st_size & (st.st_size - 1), 0) << "QEMU takes only a power of two";
    const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    void* memory = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    ASSERT_NE(memory, MAP_FAILED);
    for (std::uint32_t boot = 1; boot <= 2; ++boot) {
        // The guest polls and has no doorbell to ring: the host finds its request by looking.
        const kdcom_guest_channel channel{memory, static_cast<std::size_t>(st.st_size), nullptr, [](void*) {}, nullptr,
                                          nullptr, nullptr, 1, 5000};
        char error[256] = {};
        kdcom_guest* g = kdcom_guest_open(&channel, error, sizeof error);
        ASSERT_TRUE(g) << error;
        guest_reports_a_stop(b, g);
        kdcom_guest_detach(g);
    }
    EXPECT_EQ(b.stats().guests_attached, 2u);
    ::munmap(memory, static_cast<std::size_t>(st.st_size));
}

TEST(IvshmemPlain, AFileOfAnotherSizeIsRefusedAndLeftAlone) {
    asio::io_context io;
    scratch_dir dir;
    const std::string file = dir.path + "/other.mem";
    {
        std::ofstream out(file);
        out << "not a region";
    }
    std::error_code ec;
    EXPECT_EQ(net::make_ivshmem_plain(io.get_executor(), file, {}, ec), nullptr);
    EXPECT_EQ(ec, errc::shm_incompatible_region);
    EXPECT_EQ(std::filesystem::file_size(file), 12u) << "what was there is not truncated";
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
