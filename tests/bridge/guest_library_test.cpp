// The C-callable guest library against the bridge, as a guest kernel would use it: blocking
// KdSendPacket/KdReceivePacket calls from the guest's thread while the bridge and a debugger run
// on an io_context thread. At most one doorbell signal per call, and a clear error when the host
// goes away.
#include <gtest/gtest.h>

#include <thread>

#include "kdcom/guest/kd_guest.h"
#include "support/kd_messages.hpp"
#include "support/running_bridge.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;
using wire::packet_type;

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
