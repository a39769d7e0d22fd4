// Windows named pipes (and TCP through Windows sockets), run under Wine in CI: sessions over real
// \\.\pipe\ objects with overlapped I/O, 10,000 packets each way, a debugger that vanishes
// mid-packet and comes back, one debugger at a time, and a pipe only its creator's user may open.
#include <gtest/gtest.h>

// Asio first: it needs winsock2.h included before windows.h.
#include "kdcom/net/open_link.hpp"
#include "kdcom/net/session.hpp"
#include "kdcom/net/socket_link.hpp"
#include "kdcom/net/windows_pipe_link.hpp"
#include "support/cutting_link.hpp"
#include "support/session_traffic.hpp"

#include <windows.h>

#include <aclapi.h>

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;

std::string unique_pipe_name() {
    static int counter = 0;
    return "\\\\.\\pipe\\kdcom-test-" + std::to_string(::GetCurrentProcessId()) + "-" + std::to_string(++counter);
}

enum class kind { pipe, tcp };

// A target that listens and a debugger that connects through a cutting_link, on one io_context.
struct session_pair {
    asio::io_context io;
    std::string name = unique_pipe_name();
    std::shared_ptr<net::session> debugger, target;
    cutting_link* debugger_link = nullptr;

    session_pair(kind k, net::session_options options = {}) {
        std::error_code ec;
        std::unique_ptr<net::link> server, client;
        if (k == kind::pipe) {
            server = net::make_pipe_listener(io.get_executor(), name, ec);
            client = net::make_pipe_client(io.get_executor(), name);
        } else {
            auto l = net::make_tcp_listener(io.get_executor(), "127.0.0.1", 0, ec);
            if (l) client = net::make_tcp_client(io.get_executor(), "127.0.0.1", l->local_port());
            server = std::move(l);
        }
        if (ec) throw std::system_error(ec);
        auto cutting = std::make_unique<cutting_link>(std::move(client));
        debugger_link = cutting.get();
        endpoint_config d = streaming(), t = streaming();
        d.role = role::debugger;
        t.role = role::target;
        target = net::session::create(std::move(server), t, options);
        debugger = net::session::create(std::move(cutting), d, options);
        target->start();
        debugger->start();
    }
    ~session_pair() {
        debugger->close();
        target->close();
        io.run_for(50ms);
    }
    template <class Predicate>
    void run_until(Predicate done, std::chrono::seconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done() && std::chrono::steady_clock::now() < deadline) io.run_for(20ms);
    }
};

class WindowsTransport : public ::testing::TestWithParam<kind> {};

TEST_P(WindowsTransport, TenThousandPacketsEachWayArriveOnceInOrder) {
    session_pair pair(GetParam());
    traffic down, up;
    down.start(pair.debugger, pair.target, 10000);
    up.start(pair.target, pair.debugger, 10000);
    pair.run_until([&] { return down.done() && up.done(); }, 240s);
    expect_delivered(down, up, 0);
}

TEST_P(WindowsTransport, ADebuggerThatVanishesMidPacketComesBackAndTheSessionCompletes) {
    net::session_options options;
    options.reconnect_delay_min = 10ms;
    session_pair pair(GetParam(), options);
    traffic down, up;
    down.start(pair.debugger, pair.target, 2000);
    up.start(pair.target, pair.debugger, 2000);
    pair.debugger_link->control->cut_after_bytes = 300'000;
    pair.run_until([&] { return down.done() && up.done(); }, 120s);
    EXPECT_EQ(pair.debugger_link->control->cuts.load(), 1) << "the connection was cut mid-packet";
    expect_delivered(down, up, 1);
    EXPECT_GE(pair.target->protocol().stats().resets_received, 1u) << "the debugger ran the handshake again";
}

INSTANTIATE_TEST_SUITE_P(Transports, WindowsTransport, ::testing::Values(kind::pipe, kind::tcp),
                         [](const ::testing::TestParamInfo<kind>& test) { return test.param == kind::pipe ? "pipe" : "tcp"; });

TEST(WindowsPipe, ASecondDebuggerIsTurnedAwayWhileOneIsAttachedAndTheNextIsServed) {
    asio::io_context io;
    const std::string name = unique_pipe_name();
    std::error_code ec;
    auto server = net::make_pipe_listener(io.get_executor(), name, ec);
    ASSERT_TRUE(server) << ec.message();
    auto* listener = static_cast<net::listener*>(server.get());
    std::unique_ptr<net::byte_stream> attached;
    server->async_open([&](std::error_code, std::unique_ptr<net::byte_stream> s) { attached = std::move(s); });

    auto open = [&](net::link& link) {
        std::unique_ptr<net::byte_stream> stream;
        bool done = false;
        link.async_open([&](std::error_code, std::unique_ptr<net::byte_stream> s) {
            stream = std::move(s);
            done = true;
        });
        while (!done) io.run_one_for(100ms);
        return stream;
    };
    auto first_client = net::make_pipe_client(io.get_executor(), name);
    auto first = open(*first_client);
    ASSERT_TRUE(first);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!attached && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
    ASSERT_TRUE(attached);

    // The intruder gets in at the pipe level, and is disconnected at once: its read ends.
    auto second_client = net::make_pipe_client(io.get_executor(), name);
    auto second = open(*second_client);
    ASSERT_TRUE(second);
    std::uint8_t byte = 0;
    std::error_code read_error;
    bool read_done = false;
    second->async_read_some({&byte, 1}, [&](std::error_code e, std::size_t) {
        read_error = e;
        read_done = true;
    });
    while (!read_done && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
    EXPECT_TRUE(read_done && read_error) << "the second debugger was turned away";
    EXPECT_EQ(listener->refused(), 1u);

    // The attached session is untouched: bytes still flow.
    const std::uint8_t hello[] = {0x69, 0x69, 0x69, 0x69};
    first->async_write(hello, [](std::error_code, std::size_t) {});
    std::uint8_t got[4] = {};
    std::size_t received = 0;
    attached->async_read_some(got, [&](std::error_code, std::size_t n) { received = n; });
    while (received == 0 && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
    EXPECT_GT(received, 0u);

    // When the first leaves, the next debugger is served.
    first->close();
    attached->close();
    attached.reset();
    server->async_open([&](std::error_code, std::unique_ptr<net::byte_stream> s) { attached = std::move(s); });
    auto third_client = net::make_pipe_client(io.get_executor(), name);
    auto third = open(*third_client);
    while (!attached && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
    EXPECT_TRUE(third && attached);
}

TEST(WindowsPipe, OnlyTheCurrentUserMayOpenThePipeAndTheNameCannotBeTakenTwice) {
    asio::io_context io;
    const std::string name = unique_pipe_name();
    std::error_code ec;
    auto server = net::make_pipe_listener(io.get_executor(), name, ec);
    ASSERT_TRUE(server) << ec.message();

    // Read the pipe's DACL through a client handle: one entry, granting this user.
    HANDLE h = ::CreateFileA(name.c_str(), READ_CONTROL, 0, nullptr, OPEN_EXISTING, 0, nullptr);
    ASSERT_NE(h, INVALID_HANDLE_VALUE);
    PACL dacl = nullptr;
    PSECURITY_DESCRIPTOR sd = nullptr;
    ASSERT_EQ(::GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, nullptr, nullptr, &dacl, nullptr, &sd),
              static_cast<DWORD>(ERROR_SUCCESS));
    ASSERT_NE(dacl, nullptr);
    EXPECT_EQ(dacl->AceCount, 1) << "nobody but this user";
    void* ace = nullptr;
    ASSERT_TRUE(::GetAce(dacl, 0, &ace));
    auto* allowed = static_cast<ACCESS_ALLOWED_ACE*>(ace);
    EXPECT_EQ(allowed->Header.AceType, ACCESS_ALLOWED_ACE_TYPE);
    HANDLE token = nullptr;
    ASSERT_TRUE(::OpenProcessToken(::GetCurrentProcess(), TOKEN_QUERY, &token));
    std::vector<std::uint8_t> user(256);
    DWORD size = static_cast<DWORD>(user.size());
    ASSERT_TRUE(::GetTokenInformation(token, TokenUser, user.data(), size, &size));
    ::CloseHandle(token);
    EXPECT_TRUE(::EqualSid(reinterpret_cast<PSID>(&allowed->SidStart), reinterpret_cast<TOKEN_USER*>(user.data())->User.Sid));
    ::LocalFree(sd);
    ::CloseHandle(h);

    // A second listener on the same name is refused: the first instance is ours alone.
    std::error_code second_ec;
    EXPECT_FALSE(net::make_pipe_listener(io.get_executor(), name, second_ec));
    EXPECT_TRUE(second_ec);
}

TEST(WindowsPipe, TheWinDbgPipeStringOpensAPipeClient) {
    asio::io_context io;
    kdcom::failure error;
    const auto a = transport::parse_address("com:pipe,port=\\\\.\\pipe\\com_1,resets=0,reconnect", error);
    ASSERT_TRUE(a) << error.message();
    auto link = net::open_link(io.get_executor(), *a, role::debugger, error);
    ASSERT_TRUE(link) << error.message();
    EXPECT_EQ(link->describe(), "pipe \\\\.\\pipe\\com_1");
    const auto unix_address = transport::parse_address("unix:///tmp/kd.sock", error);
    EXPECT_FALSE(net::open_link(io.get_executor(), *unix_address, role::debugger, error));
    EXPECT_EQ(error.code, transport::transport_errc::not_on_this_platform);
    EXPECT_NE(error.detail.find("not available on Windows"), std::string::npos) << error.message();
}

}  // namespace
