// The C-callable guest library against the bridge, as a guest kernel would use it: blocking
// KdSendPacket/KdReceivePacket calls from the guest's thread while the bridge and a debugger run
// on an io_context thread. At most one doorbell signal per call, and a clear error when the host
// goes away.
#include <gtest/gtest.h>

#include <thread>

#include <asio/executor_work_guard.hpp>

#include "kdcom/bridge/bridge.hpp"
#include "kdcom/guest/kd_guest.h"
#include "support/kd_messages.hpp"
#include "support/net_pair.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;
using wire::packet_type;

// The bridge and a debugger session running on their own thread.
struct running_bridge {
    asio::io_context io;
    scratch_dir dir;
    std::string name = unique_shm_name();
    std::shared_ptr<bridge::bridge> bridge;
    std::shared_ptr<net::session> debugger;
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    std::thread runner;

    running_bridge() {
        std::error_code ec;
        auto shm_host = net::make_shm_host(io.get_executor(), name, {}, ec);
        auto listener = net::make_unix_listener(io.get_executor(), dir.path + "/kd.sock", ec);
        if (ec) throw std::system_error(ec);
        bridge = bridge::bridge::create(std::move(shm_host), std::move(listener));
        bridge->start();
        debugger = net::session::create(net::make_unix_client(io.get_executor(), dir.path + "/kd.sock"),
                                        {.role = role::debugger});
        debugger->start();
        runner = std::thread([this] { io.run(); });
    }
    ~running_bridge() { stop(); }
    void stop() {
        if (!runner.joinable()) return;
        // Close everything on its own thread, then let the loop run out of work and end.
        asio::post(io, [this] {
            debugger->close();
            bridge->close();
        });
        work.reset();
        runner.join();
    }
    bridge::statistics stats() {
        std::promise<bridge::statistics> p;
        asio::post(io, [&] { p.set_value(bridge->stats()); });
        return p.get_future().get();
    }
};

TEST(GuestLibrary, AGuestKernelTalksToTheDebuggerThroughTheBridge) {
    running_bridge rig;
    char error[256] = {};
    kdcom_guest* g = kdcom_guest_attach(rig.name.c_str(), error, sizeof error);
    ASSERT_NE(g, nullptr) << error;

    const bytes state_change = breakpoint_state_change();
    ASSERT_EQ(kdcom_guest_send_packet(g, 7, state_change.data(), static_cast<std::uint16_t>(state_change.size()), nullptr, 0),
              KDCOM_GUEST_SENT)
        << kdcom_guest_error(g);
    std::error_code ec;
    auto at_debugger = rig.debugger->receive(5000ms, ec);
    ASSERT_TRUE(at_debugger) << ec.message();
    EXPECT_EQ(at_debugger->body, state_change);

    std::uint8_t header[0x38];
    std::uint8_t data[4000];
    std::uint16_t header_length = 0, data_length = 0;
    EXPECT_EQ(kdcom_guest_receive_packet(g, 8, nullptr, 0, nullptr, nullptr, 0, nullptr, 0), KDCOM_GUEST_TIMEOUT)
        << "no break-in pending";

    // The debugger reads memory 200 times; the guest's kernel answers each request.
    constexpr int rounds = 200;
    const auto doorbells_before = kdcom_guest_doorbells(g);
    for (int i = 0; i < rounds; ++i) {
        const bytes request = manipulate(kd::manipulate_api::read_virtual_memory, 0x1000u * static_cast<unsigned>(i), 3000);
        std::thread debugger_side([&] { rig.debugger->send(packet_type::state_manipulate, request, {}, 5000ms); });
        ASSERT_EQ(kdcom_guest_receive_packet(g, 2, header, sizeof header, &header_length, data, sizeof data - sizeof header,
                                             &data_length, 5000),
                  KDCOM_GUEST_RECEIVED)
            << kdcom_guest_error(g);
        debugger_side.join();
        ASSERT_EQ(header_length, sizeof header);
        ASSERT_EQ(bytes(header, header + header_length), request);
        const auto h = kd::decode_manipulate(std::span<const std::uint8_t>(header, header_length));
        kd::manipulate_header reply = *h;
        reply.memory.actual_bytes = 3000;
        std::uint8_t reply_header[0x38];
        kd::encode_manipulate(reply, reply_header);
        std::fill_n(data, 3000, static_cast<std::uint8_t>(i));
        ASSERT_EQ(kdcom_guest_send_packet(g, 2, reply_header, sizeof reply_header, data, 3000), KDCOM_GUEST_SENT)
            << kdcom_guest_error(g);
        auto answer = rig.debugger->receive(5000ms, ec);
        ASSERT_TRUE(answer);
        ASSERT_EQ(answer->body.size(), 0x38u + 3000);
        EXPECT_EQ(answer->body.back(), static_cast<std::uint8_t>(i));
    }
    EXPECT_LE(kdcom_guest_doorbells(g) - doorbells_before, 2u * rounds) << "at most one signal per call";
    const auto s = rig.stats();
    EXPECT_EQ(s.guest_calls, s.guest_answers) << "one answer per call";
    EXPECT_EQ(s.guest_calls, 2u + 2 * rounds);
    kdcom_guest_detach(g);
}

TEST(GuestLibrary, TheGuestGetsAClearErrorWhenTheHostGoesAway) {
    auto rig = std::make_unique<running_bridge>();
    char error[256] = {};
    kdcom_guest* g = kdcom_guest_attach(rig->name.c_str(), error, sizeof error);
    ASSERT_NE(g, nullptr) << error;
    rig.reset();  // the VMM stops
    std::uint16_t header_length = 0;
    std::uint8_t header[0x38];
    EXPECT_EQ(kdcom_guest_receive_packet(g, 2, header, sizeof header, &header_length, nullptr, 0, nullptr, 1000),
              KDCOM_GUEST_ERROR);
    EXPECT_STREQ(kdcom_guest_error(g), "the host is gone");
    kdcom_guest_detach(g);

    EXPECT_EQ(kdcom_guest_attach("no-such-host", error, sizeof error), nullptr);
    EXPECT_NE(std::string(error).find("cannot reach the host"), std::string::npos) << error;
}

}  // namespace
