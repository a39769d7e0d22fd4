// The bridge over a guest region a VMM supplies (no memfd, no eventfd toward the guest, no
// process): the guest driver's side writes PDUs into its ring and traps (doorbell()); the VMM is
// asked to interrupt the guest only when the guest sleeps; a reboot (guest_reset()) with a freshly
// initialised region is served as a new guest.
#include <gtest/gtest.h>

#include <atomic>

#include "kdcom/bridge/bridge.hpp"
#include "kdcom/net/vmm_guest_link.hpp"
#include "kdcom/shm/kd_pdu.hpp"
#include "support/kd_messages.hpp"
#include "support/net_pair.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;

// The guest driver's end of the region, as a real driver would do it by hand.
struct guest_driver {
    std::span<std::uint8_t> region;
    std::optional<shm::region> view;
    std::uint32_t sequence = 0;

    void boot(std::uint32_t generation) {
        const shm::region_parameters p{64 * 1024, 16 * 1024, generation};
        std::fill(region.begin(), region.end(), 0);
        ASSERT_FALSE(shm::region::initialise(region, p));
        view.emplace(region, p, shm::side::guest);
    }
    // KdSendPacket's first half: the PDU into the ring, then the trap.
    void send(net::vmm_guest_link& vmm, wire::packet_type type, std::span<const std::uint8_t> header) {
        shm::kd_pdu pdu;
        pdu.operation = KDCOM_SHM_PDU_SEND;
        pdu.packet_type = static_cast<std::uint16_t>(type);
        pdu.sequence = ++sequence;
        pdu.header = header;
        bytes message(shm::kd_pdu_size(pdu));
        std::error_code ec;
        shm::encode_kd_pdu(pdu, message, ec);
        ASSERT_EQ(view->outbound().write(KDCOM_SHM_KD_PDU, message), shm::ring_status::ok);
        view->inbound().mark_sleeping(true);  // then it halts until interrupted
        vmm.doorbell();
    }
    // Its second half: the answer, once there.
    std::optional<shm::kd_pdu> answer(bytes& storage) {
        storage.resize(16 * 1024);
        std::uint16_t kind = 0;
        std::size_t length = 0;
        if (view->inbound().read(storage, kind, length) != shm::ring_status::ok) return std::nullopt;
        view->inbound().mark_sleeping(false);
        storage.resize(length);
        shm::kd_pdu a;
        if (shm::decode_kd_pdu(storage, a)) return std::nullopt;
        return a;
    }
};

TEST(VmmGuest, TheBridgeServesARegionTheVmmSuppliesAndAGuestThatReboots) {
    asio::io_context io;
    scratch_dir dir;
    std::vector<std::uint64_t> guest_pages(KDCOM_SHM_REGION_SIZE(64 * 1024u) / 8);
    guest_driver driver;
    driver.region = {reinterpret_cast<std::uint8_t*>(guest_pages.data()), guest_pages.size() * 8};
    driver.boot(1);

    std::atomic<int> interrupts{0};
    std::error_code ec;
    auto vmm_link = net::make_vmm_guest_link(io.get_executor(), driver.region, [&] { ++interrupts; }, {}, ec);
    ASSERT_TRUE(vmm_link) << ec.message();
    auto* vmm = vmm_link.get();
    auto b = bridge::bridge::create(std::move(vmm_link), net::make_unix_listener(io.get_executor(), dir.path + "/kd.sock", ec));
    b->start();
    auto debugger = net::session::create(net::make_unix_client(io.get_executor(), dir.path + "/kd.sock"),
                                         {.role = role::debugger});
    debugger->start();
    auto run_until = [&](auto done) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(5ms);
        return done();
    };

    for (std::uint32_t boot = 1; boot <= 2; ++boot) {
        if (boot == 2) {  // the guest reboots: the driver initialises the region again, the VMM says so
            driver.boot(2);
            vmm->guest_reset();
        }
        const bytes state_change = breakpoint_state_change();
        std::optional<net::received_packet> at_debugger;
        debugger->async_receive([&](std::error_code e, net::received_packet p) {
            if (!e) at_debugger = std::move(p);
        });
        const int interrupts_before = interrupts;
        driver.send(*vmm, wire::packet_type::state_change64, state_change);
        bytes storage;
        std::optional<shm::kd_pdu> answer;
        ASSERT_TRUE(run_until([&] { return at_debugger && (answer || (answer = driver.answer(storage))); })) << boot;
        EXPECT_EQ(at_debugger->body, state_change);
        EXPECT_EQ(answer->operation, KDCOM_SHM_PDU_SENT);
        EXPECT_EQ(answer->status, KDCOM_SHM_SEND_ACKNOWLEDGED);
        EXPECT_EQ(answer->sequence, driver.sequence);
        EXPECT_EQ(interrupts - interrupts_before, 1) << "the sleeping guest was interrupted once for its answer";
    }
    EXPECT_EQ(b->stats().guests_attached, 2u);
    EXPECT_EQ(b->stats().guest_calls, 2u);
    debugger->close();
    b->close();
    io.run_for(20ms);
}

}  // namespace
