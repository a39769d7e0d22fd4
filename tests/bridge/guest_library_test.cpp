// The C-callable guest library against the bridge, as a guest kernel would use it: blocking
// KdSendPacket/KdReceivePacket calls from the guest's thread while the bridge and a debugger run
// on an io_context thread. At most one doorbell signal per call, and a clear error when the host
// goes away.
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
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

// A debugger on the bridge's thread that answers each packet from the guest at once, from its
// receive handler, with the next packets of a script, so that its acknowledgement and the first of
// them leave in one write (as a debugger that answers at once does).
struct answering_debugger {
    running_bridge& rig;
    std::deque<std::vector<std::pair<packet_type, bytes>>> after_each;  // what to send after each guest packet
    std::atomic<int> received{0};

    void start() {
        rig.on_io([this] { arm(); });
    }
    void arm() {
        rig.debugger->async_receive([this](std::error_code ec, net::received_packet) {
            if (ec) return;
            ++received;
            if (!after_each.empty()) {
                for (const auto& [type, body] : after_each.front())
                    rig.debugger->async_send(type, body, {}, [](std::error_code) {});
                after_each.pop_front();
            }
            arm();
        });
    }
};

bytes reply_to(std::span<const std::uint8_t> request) {
    kd::manipulate_header h = *kd::decode_manipulate(request);
    h.return_status = 0;
    bytes out(kd::manipulate_header_size);
    kd::encode_manipulate(h, out);
    return out;
}

// A guest attached to the rig's bridge that reported a breakpoint, as a kernel that stops does;
// nullptr (and a failure) if it could not.
kdcom_guest* attach_and_stop(running_bridge& rig) {
    char error[256] = {};
    kdcom_guest* g = kdcom_guest_attach(rig.name.c_str(), error, sizeof error);
    if (!g) {
        ADD_FAILURE() << error;
        return nullptr;
    }
    const bytes state_change = breakpoint_state_change();
    if (kdcom_guest_send_packet(g, 7, state_change.data(), static_cast<std::uint16_t>(state_change.size()), nullptr, 0) !=
        KDCOM_GUEST_SENT) {
        ADD_FAILURE() << kdcom_guest_error(g);
        kdcom_guest_detach(g);
        return nullptr;
    }
    return g;
}

TEST(GuestLibrary, AStoppedKernelServingADebuggerThatAnswersAtOnceCrossesOncePerRequest) {
    running_bridge rig;
    constexpr int rounds = 200;
    answering_debugger debugger{rig, {}};
    std::vector<bytes> requests;
    for (int i = 0; i < rounds; ++i) {
        requests.push_back(manipulate(kd::manipulate_api::read_physical_memory, 0x1000u * static_cast<unsigned>(i), 3944));
        debugger.after_each.push_back({{packet_type::state_manipulate, requests.back()}});
    }
    debugger.start();
    kdcom_guest* g = attach_and_stop(rig);
    ASSERT_NE(g, nullptr);
    std::uint8_t header[0x38];
    std::vector<std::uint8_t> data(4000);
    for (int i = 0; i < rounds; ++i) {
        std::uint16_t header_length = 0, data_length = 0;
        ASSERT_EQ(kdcom_guest_receive_packet(g, 2, header, sizeof header, &header_length, data.data(), 3944, &data_length, 5000),
                  KDCOM_GUEST_RECEIVED)
            << kdcom_guest_error(g);
        ASSERT_TRUE(bytes(header, header + header_length) == requests[static_cast<std::size_t>(i)]) << i;
        ASSERT_EQ(data_length, 0u);
        const bytes reply = reply_to({header, header_length});
        std::fill_n(data.begin(), 3944, static_cast<std::uint8_t>(i));
        ASSERT_EQ(kdcom_guest_send_packet(g, 2, reply.data(), 0x38, data.data(), 3944), KDCOM_GUEST_SENT)
            << kdcom_guest_error(g);
    }
    EXPECT_EQ(kdcom_guest_receives_without_crossing(g), static_cast<std::uint64_t>(rounds))
        << "every request came with the answer to the send before it";
    const auto s = rig.stats();
    EXPECT_EQ(s.guest_calls, 1u + rounds) << "one crossing per request: the reply's SEND";
    EXPECT_EQ(s.packets_carried, static_cast<std::uint64_t>(rounds));
    EXPECT_EQ(debugger.received, 1 + rounds);
    kdcom_guest_detach(g);
}

// A carried packet is served exactly as the host would serve it: to a receive of its type, too
// large for the buffers is RESEND, of another type it is dropped, and a break-in poll leaves it.
TEST(GuestLibrary, ACarriedPacketIsServedAsTheHostWouldServeIt) {
    running_bridge rig;
    const bytes first = manipulate(kd::manipulate_api::get_version);
    const bytes second = manipulate(kd::manipulate_api::read_virtual_memory, 0x1000, 100);
    const bytes write = manipulate(kd::manipulate_api::write_virtual_memory, 0x2000, 1000);
    bytes write_with_data = write;
    write_with_data.resize(write.size() + 1000, 0x5A);
    const bytes third = manipulate(kd::manipulate_api::get_context);
    answering_debugger debugger{rig, {}};
    debugger.after_each = {
        {{packet_type::state_manipulate, first}},                                  // after the state change
        {{packet_type::debug_io, bytes(16, 0)}, {packet_type::state_manipulate, second}},  // after reply 1
        {{packet_type::state_manipulate, write_with_data}},                        // after reply 2
        {{packet_type::state_manipulate, third}},                                  // after the state change again
    };
    debugger.start();
    char error[256] = {};
    kdcom_guest* g = kdcom_guest_attach(rig.name.c_str(), error, sizeof error);
    ASSERT_NE(g, nullptr) << error;
    std::uint8_t header[0x38];
    std::uint8_t data[500];
    std::uint16_t header_length = 0, data_length = 0;
    const auto receive = [&](std::uint16_t type) {
        return kdcom_guest_receive_packet(g, type, header, sizeof header, &header_length, data, sizeof data, &data_length, 5000);
    };
    const auto send = [&](std::uint16_t type, const bytes& body) {
        return kdcom_guest_send_packet(g, type, body.data(), static_cast<std::uint16_t>(body.size()), nullptr, 0);
    };
    const bytes state_change = breakpoint_state_change();

    ASSERT_EQ(send(7, state_change), KDCOM_GUEST_SENT) << kdcom_guest_error(g);
    // A break-in poll goes to the host and leaves the carried request alone.
    EXPECT_EQ(kdcom_guest_receive_packet(g, 8, nullptr, 0, nullptr, nullptr, 0, nullptr, 0), KDCOM_GUEST_TIMEOUT);
    ASSERT_EQ(receive(2), KDCOM_GUEST_RECEIVED) << kdcom_guest_error(g);
    EXPECT_TRUE(bytes(header, header + header_length) == first);
    EXPECT_EQ(kdcom_guest_receives_without_crossing(g), 1u);
    EXPECT_EQ(kdcom_guest_carried_packets_dropped(g), 0u);

    // The DEBUG_IO packet comes along; the kernel waits for a manipulate, so it is dropped and the
    // receive goes to the host, which has the next request by then or soon.
    ASSERT_EQ(send(2, reply_to(first)), KDCOM_GUEST_SENT) << kdcom_guest_error(g);
    ASSERT_EQ(receive(2), KDCOM_GUEST_RECEIVED) << kdcom_guest_error(g);
    EXPECT_TRUE(bytes(header, header + header_length) == second);
    EXPECT_EQ(kdcom_guest_receives_without_crossing(g), 1u);
    EXPECT_EQ(kdcom_guest_carried_packets_dropped(g), 1u);
    EXPECT_EQ(rig.stats().packets_dropped, 0u);  // the host never saw that drop

    // 0x38 + 1000 bytes do not fit 0x38 + 500: RESEND, never a cut packet; the kernel reports its
    // state again.
    ASSERT_EQ(send(2, reply_to(second)), KDCOM_GUEST_SENT) << kdcom_guest_error(g);
    EXPECT_EQ(receive(2), KDCOM_GUEST_RESEND);
    EXPECT_EQ(kdcom_guest_receives_without_crossing(g), 2u);
    ASSERT_EQ(send(7, state_change), KDCOM_GUEST_SENT) << kdcom_guest_error(g);
    ASSERT_EQ(receive(2), KDCOM_GUEST_RECEIVED) << kdcom_guest_error(g);
    EXPECT_TRUE(bytes(header, header + header_length) == third);
    EXPECT_EQ(kdcom_guest_receives_without_crossing(g), 3u);
    EXPECT_EQ(kdcom_guest_carried_packets_dropped(g), 1u);  // RESEND is not a drop
    EXPECT_EQ(rig.stats().packets_carried, 4u);
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
