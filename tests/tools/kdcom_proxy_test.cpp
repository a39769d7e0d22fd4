// kdcom-proxy as a user runs it, between a real debugger session and a real target session: every
// byte forwarded unmodified and recorded in both directions, the packets printed as they pass, a
// debugger that detaches replaced by the next one, a clean stop, unusable addresses refused.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/capture_contents.hpp"
#include "support/net_pair.hpp"
#include "support/session_traffic.hpp"
#include "support/tool_process.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;

bool wait_for_file(const std::string& path) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!std::filesystem::exists(path) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    return std::filesystem::exists(path);
}

TEST(KdcomProxy, ForwardsEveryByteRecordsBothWaysAndOutlivesADebugger) {
    scratch_dir dir;
    const std::string target_socket = dir.path + "/target.sock", debugger_socket = dir.path + "/debugger.sock";
    const std::string capture_path = dir.path + "/proxy.pcapng";
    asio::io_context io;
    std::error_code ec;
    auto target = net::session::create(net::make_unix_listener(io.get_executor(), target_socket, ec), streaming());
    ASSERT_FALSE(ec) << ec.message();
    target->start();

    tool_process proxy(KDCOM_PROXY_PATH,
                       {"--listen", "unix-listen://" + debugger_socket, "--connect", "unix://" + target_socket,
                        "--capture", capture_path, "--decode"},
                       dir.path + "/out.txt");
    ASSERT_TRUE(wait_for_file(debugger_socket)) << proxy.output();

    // What the debugger wrote and read, byte for byte, over both of its connections.
    bytes debugger_wrote, debugger_read;
    auto tap = [&](net::direction d, timestamp, std::span<const std::uint8_t> b) {
        append(d == net::direction::to_peer ? debugger_wrote : debugger_read, b);
    };
    std::size_t packets_each_way = 0;
    for (int attach = 0; attach < 2; ++attach) {
        endpoint_config c = streaming();
        c.role = role::debugger;
        auto debugger = net::session::create(net::make_unix_client(io.get_executor(), debugger_socket), c);
        debugger->set_tap(tap);
        debugger->start();
        traffic down, up;
        down.start(debugger, target, 150);
        up.start(target, debugger, 150);
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        while (!(down.done() && up.done()) && std::chrono::steady_clock::now() < deadline) io.run_for(20ms);
        // The second debugger's reset handshake may re-send a packet the first left in flight.
        expect_delivered(down, up, attach);
        packets_each_way += 150;
        debugger->close();
        io.run_for(100ms);
    }
    ASSERT_TRUE(proxy.wait_for_output("debugger went away"));
    ::kill(proxy.pid, SIGTERM);
    EXPECT_EQ(proxy.wait_exit(), 0);
    const std::string out = proxy.output();
    EXPECT_NE(out.find("2 debugger and 1 target connections"), std::string::npos) << out;
    EXPECT_NE(out.find(" d2t "), std::string::npos) << "packets printed as they pass";
    EXPECT_NE(out.find(" t2d "), std::string::npos);
    EXPECT_NE(out.find("KD_ACKNOWLEDGE"), std::string::npos);

    const auto c = read_capture(capture_path);
    ASSERT_FALSE(c.error) << c.detail;
    EXPECT_EQ(c.info.debugger, "unix-listen://" + debugger_socket);
    EXPECT_EQ(c.info.target, "unix://" + target_socket);
    // Transparent: the capture holds exactly the bytes the debugger wrote and read.
    EXPECT_TRUE(c.stream(capture::flow::debugger_to_target) == debugger_wrote);
    EXPECT_TRUE(c.stream(capture::flow::target_to_debugger) == debugger_read);
    EXPECT_GT(debugger_wrote.size(), packets_each_way * 64);
    target->close();
    io.run_for(50ms);
}

TEST(KdcomProxy, RefusesAddressesItCannotUse) {
    scratch_dir dir;
    tool_process client_as_listener(KDCOM_PROXY_PATH, {"--listen", "tcp://127.0.0.1:9", "--connect", "tcp://127.0.0.1:9"},
                                    dir.path + "/a.txt");
    EXPECT_EQ(client_as_listener.wait_exit(), 2);
    EXPECT_NE(client_as_listener.output().find("--listen needs an address to listen on"), std::string::npos)
        << client_as_listener.output();
    tool_process listener_as_client(KDCOM_PROXY_PATH,
                                    {"--listen", "tcp-listen://127.0.0.1:0", "--connect", "tcp-listen://127.0.0.1:0"},
                                    dir.path + "/b.txt");
    EXPECT_EQ(listener_as_client.wait_exit(), 2);
    EXPECT_NE(listener_as_client.output().find("--connect needs an address to connect to"), std::string::npos);
    tool_process malformed(KDCOM_PROXY_PATH, {"--listen", "tcp-listen://:99999", "--connect", "unix:///x"},
                           dir.path + "/c.txt");
    EXPECT_EQ(malformed.wait_exit(), 2);
    EXPECT_NE(malformed.output().find("invalid --listen address"), std::string::npos) << malformed.output();
    tool_process missing(KDCOM_PROXY_PATH, {"--listen", "tcp-listen://127.0.0.1:0"}, dir.path + "/d.txt");
    EXPECT_EQ(missing.wait_exit(), 2);
}

}  // namespace
