// kdcom-bridge as a user runs it: a guest (the C library) and a debugger attach, a packet crosses,
// SIGUSR1 prints statistics, SIGTERM stops it cleanly with the final statistics; bad addresses
// are refused with a clear message and exit status 2.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <asio/executor_work_guard.hpp>

#include "kdcom/guest/kd_guest.h"
#include "kdcom/net/shm_link.hpp"
#include "support/capture_contents.hpp"
#include "support/fake_qemu.hpp"
#include "support/kd_messages.hpp"
#include "support/net_pair.hpp"
#include "support/tool_process.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;

TEST(KdcomBridge, CarriesAGuestsPacketsToADebuggerReportsAndStopsCleanly) {
    scratch_dir dir;
    const std::string name = unique_shm_name(), socket = dir.path + "/kd.sock";
    const std::string capture_path = dir.path + "/bridge.pcapng";
    tool_process bridge(KDCOM_BRIDGE_PATH, {"--guest", "shm://" + name, "--debugger", "unix-listen://" + socket, "--capture", capture_path},
                          dir.path + "/out.txt");
    ASSERT_GT(bridge.pid, 0);
    ASSERT_TRUE(bridge.wait_for_output("kdcom-bridge: guest shm://" + name)) << bridge.output();
    // The rendezvous socket appears once the bridge listens.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!std::filesystem::exists(net::shm_rendezvous_path(name)) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);

    asio::io_context io;
    auto work = asio::make_work_guard(io);
    auto debugger = net::session::create(net::make_unix_client(io.get_executor(), socket), {.role = role::debugger});
    debugger->start();
    std::thread runner([&] { io.run(); });

    char error[256] = {};
    kdcom_guest* g = kdcom_guest_attach(name.c_str(), error, sizeof error);
    ASSERT_NE(g, nullptr) << error;
    const bytes state_change = breakpoint_state_change();
    EXPECT_EQ(kdcom_guest_send_packet(g, 7, state_change.data(), static_cast<std::uint16_t>(state_change.size()), nullptr, 0),
              KDCOM_GUEST_SENT)
        << kdcom_guest_error(g);
    std::error_code ec;
    const auto got = debugger->receive(5000ms, ec);
    ASSERT_TRUE(got) << ec.message();
    EXPECT_EQ(got->body, state_change);

    ::kill(bridge.pid, SIGUSR1);
    EXPECT_TRUE(bridge.wait_for_output("statistics: guest calls 1, answers 1")) << bridge.output();
    ::kill(bridge.pid, SIGTERM);
    EXPECT_EQ(bridge.wait_exit(), 0);
    const std::string out = bridge.output();
    EXPECT_NE(out.find("guest attached"), std::string::npos) << out;
    EXPECT_NE(out.find("debugger attached"), std::string::npos) << out;
    EXPECT_NE(out.find("terminated, stopping"), std::string::npos) << out;
    EXPECT_NE(out.rfind("statistics: guest calls 1, answers 1 (crossings 2); packets to the debugger 1"), std::string::npos)
        << out;

    kdcom_guest_detach(g);
    asio::post(io, [&] { debugger->close(); });
    work.reset();
    runner.join();

    // The capture holds the debugger link as the debugger saw it: the state change went to it.
    EXPECT_NE(out.find("capture: "), std::string::npos) << out;
    const auto c = read_capture(capture_path);
    EXPECT_FALSE(c.error) << c.detail;
    EXPECT_EQ(c.info.debugger, "unix-listen://" + socket);
    const auto sent = decode_whole(c.stream(capture::flow::target_to_debugger));
    EXPECT_TRUE(std::any_of(sent.packets.begin(), sent.packets.end(), [&](const auto& p) { return p.body == state_change; }));
    EXPECT_FALSE(decode_whole(c.stream(capture::flow::debugger_to_target)).packets.empty())
        << "the debugger's reset and acknowledgement";
}

TEST(KdcomBridge, ServesAQemuGuestAsItsIvshmemServer) {
    scratch_dir dir;
    const std::string server = dir.path + "/ivshmem.sock", socket = dir.path + "/kd.sock";
    tool_process bridge(KDCOM_BRIDGE_PATH, {"--guest", "ivshmem://" + server, "--debugger", "unix-listen://" + socket},
                        dir.path + "/out.txt");
    ASSERT_TRUE(bridge.wait_for_output("kdcom-bridge: guest ivshmem://" + server)) << bridge.output();
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    auto debugger = net::session::create(net::make_unix_client(io.get_executor(), socket), {.role = role::debugger});
    debugger->start();
    std::thread runner([&] { io.run(); });

    fake_qemu qemu(server);
    qemu.handshake();
    kdcom_guest* g = qemu.boot_guest();
    ASSERT_NE(g, nullptr);
    const bytes state_change = breakpoint_state_change();
    EXPECT_EQ(kdcom_guest_send_packet(g, 7, state_change.data(), static_cast<std::uint16_t>(state_change.size()), nullptr, 0),
              KDCOM_GUEST_SENT)
        << kdcom_guest_error(g);
    std::error_code ec;
    const auto got = debugger->receive(5000ms, ec);
    ASSERT_TRUE(got) << ec.message();
    EXPECT_EQ(got->body, state_change);
    EXPECT_TRUE(bridge.wait_for_output("guest attached: ivshmem guest (VM 1, generation 1)")) << bridge.output();

    kdcom_guest_detach(g);
    qemu.quit();
    EXPECT_TRUE(bridge.wait_for_output("guest gone")) << "QEMU's exit ends its guest\n" << bridge.output();
    ::kill(bridge.pid, SIGTERM);
    EXPECT_EQ(bridge.wait_exit(), 0);
    EXPECT_FALSE(std::filesystem::exists(server)) << "the server's socket file is removed at exit";
    asio::post(io, [&] { debugger->close(); });
    work.reset();
    runner.join();
}

TEST(KdcomBridge, RefusesAddressesItCannotUse) {
    scratch_dir dir;
    tool_process wrong_kind(KDCOM_BRIDGE_PATH, {"--guest", "tcp://127.0.0.1:1"}, dir.path + "/a.txt");
    EXPECT_EQ(wrong_kind.wait_exit(), 2);
    EXPECT_NE(wrong_kind.output().find("the guest address must be shm://NAME"), std::string::npos) << wrong_kind.output();
    tool_process malformed(KDCOM_BRIDGE_PATH, {"--debugger", "tcp-listen://:99999"}, dir.path + "/b.txt");
    EXPECT_EQ(malformed.wait_exit(), 2);
    EXPECT_NE(malformed.output().find("invalid debugger address"), std::string::npos) << malformed.output();
    tool_process no_server(KDCOM_BRIDGE_PATH, {"--guest", "ivshmem://" + dir.path + "/no-such-dir/kd.sock"}, dir.path + "/d.txt");
    EXPECT_EQ(no_server.wait_exit(), 2);
    EXPECT_NE(no_server.output().find("cannot listen on ivshmem://" + dir.path + "/no-such-dir/kd.sock"), std::string::npos)
        << no_server.output();
    tool_process unwritable(KDCOM_BRIDGE_PATH, {"--guest", "shm://" + unique_shm_name(), "--debugger", "unix-listen://" + dir.path + "/s",
                               "--capture", dir.path + "/no-such-dir/c.pcapng"},
                              dir.path + "/c.txt");
    EXPECT_EQ(unwritable.wait_exit(), 2);
    EXPECT_NE(unwritable.output().find("cannot write the capture"), std::string::npos) << unwritable.output();
    // A rendezvous directory too long for a socket path: said, with the path.
    const std::string long_dir = dir.path + "/" + std::string(120, 'd');
    const auto r = run_command("KDCOM_SHM_DIR=" + long_dir + " " + KDCOM_BRIDGE_PATH + " --guest shm://x --debugger unix-listen://" +
                               dir.path + "/s2");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("cannot listen on shm://x (rendezvous socket " + long_dir + "/kdcom-shm-x.sock): File name too long"),
              std::string::npos)
        << r.out;
}

}  // namespace
