// The fake kernel behind the bridge, driven by a debugger the way kd drives Windows: a DbgPrint at
// boot, a break-in, the breakpoint state change, GetVersion, memory reads checked byte for byte
// against the image, a write read back, the context, and Continue.
#include <gtest/gtest.h>

#include <thread>

#include "kdcom/guest/fake_kernel.hpp"
#include "support/kd_messages.hpp"
#include "support/kernel_thread.hpp"
#include "support/running_bridge.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;
using wire::packet_type;

constexpr std::uint64_t kern_base = 0xfffff80000000000u;

// Sends a manipulate request from the debugger and returns the kernel's reply.
net::received_packet ask(running_bridge& rig, const bytes& header, const bytes& data = {}) {
    EXPECT_FALSE(rig.debugger->send(packet_type::state_manipulate, header, data, 5000ms));
    std::error_code ec;
    auto reply = rig.debugger->receive(5000ms, ec);
    EXPECT_TRUE(reply) << ec.message();
    return reply ? *reply : net::received_packet{};
}

// Breaks in and returns the kernel's state change. A break-in is one byte nobody acknowledges: a
// lossy line may eat it, and one sent before the debugger's link is up goes nowhere. Like a user,
// press Ctrl+Break again when the kernel has not stopped within a second.
std::optional<net::received_packet> break_in(running_bridge& rig) {
    for (int press = 0; press < 10; ++press) {
        rig.on_io([&] { rig.debugger->send_breakin(); });
        std::error_code ec;
        while (auto p = rig.debugger->receive(1000ms, ec))
            if (p->type == packet_type::state_change64) return p;
    }
    return std::nullopt;
}

// The debugger's link, and whether it loses and damages what the debugger writes.
class FakeKernel : public ::testing::TestWithParam<std::tuple<transport_kind, bool>> {};

TEST_P(FakeKernel, ADebuggerBreaksInReadsAndWritesMemoryAndContinues) {
    const auto [kind, faulty] = GetParam();
    running_bridge rig({}, kind, faulty ? 0.05 : 0, faulty ? 0.02 : 0);
    char error[256] = {};
    kdcom_guest* g = kdcom_guest_attach(rig.name.c_str(), error, sizeof error);
    ASSERT_NE(g, nullptr) << error;
    guest::memory_image memory(64 << 20), reference(64 << 20);
    guest::fake_kernel kernel(g, memory, {.kern_base = kern_base});
    std::atomic<bool> stop{false};
    std::thread guest_thread([&] {
        kernel.print("fake kernel booting\n");
        kernel.run(stop);
    });

    std::error_code ec;
    auto print = rig.debugger->receive(5000ms, ec);
    ASSERT_TRUE(print) << ec.message();
    EXPECT_EQ(print->type, packet_type::debug_io);
    EXPECT_EQ(std::string(print->body.end() - 20, print->body.end()), "fake kernel booting\n");

    auto stopped = break_in(rig);
    ASSERT_TRUE(stopped) << "the kernel stopped";
    const auto state = kd::decode_state_change(stopped->body);
    ASSERT_TRUE(state);
    EXPECT_EQ(state->exception.code, 0x80000003u);

    auto reply = ask(rig, manipulate(kd::manipulate_api::get_version));
    auto version = kd::decode_manipulate(reply.body);
    ASSERT_TRUE(version);
    EXPECT_EQ(version->return_status, 0u);
    EXPECT_EQ(version->version.kern_base, kern_base);
    EXPECT_EQ(version->version.machine_type, 0x8664);

    for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{0x1234567}, std::uint64_t{(64 << 20) - 1000}}) {
        reply = ask(rig, manipulate(kd::manipulate_api::read_virtual_memory, kern_base + offset, 3000));
        const auto h = kd::decode_manipulate(reply.body);
        ASSERT_TRUE(h);
        const std::size_t expected = std::min<std::uint64_t>(3000, (64 << 20) - offset);
        ASSERT_EQ(h->memory.actual_bytes, expected);
        bytes want(expected);
        reference.read(offset, want);
        EXPECT_EQ(bytes(reply.body.begin() + kd::manipulate_header_size, reply.body.end()), want) << offset;
    }

    const bytes written(100, 0xAB);
    reply = ask(rig, manipulate(kd::manipulate_api::write_physical_memory, 0x5000, 100), written);
    EXPECT_EQ(kd::decode_manipulate(reply.body)->memory.actual_bytes, 100u);
    reply = ask(rig, manipulate(kd::manipulate_api::read_physical_memory, 0x4FF0, 32));
    const bytes back(reply.body.begin() + kd::manipulate_header_size, reply.body.end());
    ASSERT_EQ(back.size(), 32u);
    bytes before(16);
    reference.read(0x4FF0, before);
    EXPECT_EQ(bytes(back.begin(), back.begin() + 16), before) << "untouched bytes stay";
    EXPECT_EQ(bytes(back.begin() + 16, back.end()), bytes(16, 0xAB)) << "written bytes read back";

    reply = ask(rig, manipulate(kd::manipulate_api::get_context));
    EXPECT_EQ(reply.body.size(), kd::manipulate_header_size + guest::fake_kernel::context_size);

    reply = ask(rig, manipulate(kd::manipulate_api::read_virtual_memory, 0x1000, 16));  // below kern_base
    EXPECT_EQ(kd::decode_manipulate(reply.body)->return_status, 0xC0000001u) << "unmapped: unsuccessful";

    EXPECT_FALSE(rig.debugger->send(packet_type::state_manipulate, manipulate(kd::manipulate_api::continue_), {}, 5000ms));
    std::this_thread::sleep_for(50ms);
    stop = true;
    guest_thread.join();
    EXPECT_EQ(kernel.stats().breaks, 1u);
    EXPECT_EQ(kernel.stats().requests, 9u) << "GetVersion, 5 reads, a write, GetContext, Continue";
    EXPECT_EQ(kernel.stats().bytes_written, 100u);
    EXPECT_TRUE(kernel.error().empty()) << kernel.error();
    kdcom_guest_detach(g);
}

INSTANTIATE_TEST_SUITE_P(DebuggerLinks, FakeKernel,
                         ::testing::Combine(::testing::Values(transport_kind::tcp, transport_kind::unix_socket,
                                                              transport_kind::fifo, transport_kind::serial_pty),
                                            ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<transport_kind, bool>>& test) {
                             return to_string(std::get<0>(test.param)) + (std::get<1>(test.param) ? "_faulty" : "");
                         });

std::optional<net::received_packet> next_of_type(running_bridge& rig, packet_type type) {
    for (int i = 0; i < 10; ++i) {
        std::error_code ec;
        auto p = rig.debugger->receive(5000ms, ec);
        if (!p) return std::nullopt;
        if (p->type == type) return p;
    }
    return std::nullopt;
}

TEST(FakeKernelLife, ANewDebuggerIsToldTheStateAgainAfterItsResetHandshake) {
    running_bridge rig;
    kernel_thread k(rig.name);
    ASSERT_TRUE(break_in(rig)) << "the first debugger sees the break";

    // That debugger goes away; another attaches while the kernel is still stopped.
    rig.on_io([&] {
        rig.debugger->close();
        rig.debugger = net::session::create(net::make_unix_client(rig.io.get_executor(), rig.debugger_links->debugger_address.path),
                                            {.role = role::debugger});
        rig.debugger->start();
    });
    const auto again = next_of_type(rig, packet_type::state_change64);
    ASSERT_TRUE(again) << "the kernel reported its state to the new debugger";
    EXPECT_EQ(kd::decode_state_change(again->body)->exception.code, 0x80000003u);
    EXPECT_FALSE(rig.debugger->send(packet_type::state_manipulate, manipulate(kd::manipulate_api::continue_), {}, 5000ms));
    k.finish();
    EXPECT_GE(k.kernel->stats().state_changes_resent, 1u);
    EXPECT_GE(rig.stats().resends_to_guest, 1u);
}

TEST(FakeKernelLife, AGuestThatRebootsIsServedAgainWithTheDebuggerStillAttached) {
    running_bridge rig;
    {
        kernel_thread first(rig.name, "first boot\n");
        const auto p = next_of_type(rig, packet_type::debug_io);
        ASSERT_TRUE(p);
        EXPECT_EQ(std::string(p->body.end() - 11, p->body.end()), "first boot\n");
    }  // the guest goes away (a reboot)
    kernel_thread second(rig.name, "second boot\n");
    const auto p = next_of_type(rig, packet_type::debug_io);
    ASSERT_TRUE(p);
    EXPECT_EQ(std::string(p->body.end() - 12, p->body.end()), "second boot\n");
    EXPECT_TRUE(break_in(rig)) << "and it can be debugged";
    EXPECT_FALSE(rig.debugger->send(packet_type::state_manipulate, manipulate(kd::manipulate_api::continue_), {}, 5000ms));
    EXPECT_EQ(rig.stats().guests_attached, 2u);
}

}  // namespace
