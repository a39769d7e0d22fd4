// A debugger process killed with SIGKILL in the middle of a transfer, and a new one started: the
// target session accepts it, answers its handshake, re-sends the packet that was in flight, and
// the transfer completes. And the line-rate limiter paces a link like a serial wire.
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/posix/stream_descriptor.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>

#include "kdcom/net/open_link.hpp"
#include "support/net_pair.hpp"
#include "support/session_checks.hpp"

extern char** environ;

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;

// A running kdcom_test_peer whose output lines are read asynchronously.
struct peer_process {
    pid_t pid = -1;
    std::unique_ptr<asio::posix::stream_descriptor> out;
    asio::streambuf buffer;
    std::vector<std::uint32_t> sequences;
    bool stopped = false;  // kill() drains the output itself; a read completed before it is moot

    peer_process(asio::io_context& io, const std::string& address) {
        int fds[2];
        if (::pipe(fds) != 0) throw std::runtime_error("pipe");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&actions, fds[0]);
        std::string path = KDCOM_TEST_PEER_PATH;
        char* args[] = {path.data(), const_cast<char*>(address.c_str()), nullptr};
        if (::posix_spawn(&pid, path.c_str(), &actions, nullptr, args, environ) != 0) throw std::runtime_error("spawn");
        posix_spawn_file_actions_destroy(&actions);
        ::close(fds[1]);
        out = std::make_unique<asio::posix::stream_descriptor>(io, fds[0]);
        read_line();
    }
    ~peer_process() { kill(); }

    void read_line() {
        asio::async_read_until(*out, buffer, '\n', [this](std::error_code ec, std::size_t) {
            if (ec || stopped) return;
            std::istream in(&buffer);
            std::uint32_t s = 0;
            in >> s;
            in.ignore();
            sequences.push_back(s);
            read_line();
        });
    }

    // SIGKILL; then whatever it printed before dying is read to the end, so `sequences` is all
    // it ever reported.
    void kill() {
        if (pid <= 0) return;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        pid = -1;
        stopped = true;
        std::error_code ignored;
        out->cancel(ignored);
        out->non_blocking(false, ignored);
        std::error_code ec;
        while (!ec) {
            asio::read_until(*out, buffer, '\n', ec);
            if (ec) break;
            std::istream in(&buffer);
            std::uint32_t s = 0;
            in >> s;
            in.ignore();
            sequences.push_back(s);
        }
        out->close(ignored);
    }
};

// The target listens on the first address; the debugger processes connect to the second.
struct address_pair {
    std::string listen, connect;
};

class ProcessRestart : public ::testing::TestWithParam<transport_kind> {};

TEST_P(ProcessRestart, ADebuggerKilledMidTransferIsReplacedAndTheTransferCompletes) {
    asio::io_context io;
    scratch_dir dir;
    const std::string shm_name = unique_shm_name();
    address_pair addresses;
    switch (GetParam()) {
    case transport_kind::shm: addresses = {"shm://" + shm_name, "shm://" + shm_name + "?guest"}; break;
    case transport_kind::tcp: addresses = {"tcp-listen://127.0.0.1:0", "tcp://127.0.0.1:"}; break;  // + the port
    case transport_kind::fifo: addresses = {"fifo://" + dir.path + "/serial", "fifo://" + dir.path + "/serial"}; break;
    default: addresses = {"unix-listen://" + dir.path + "/kd.sock", "unix://" + dir.path + "/kd.sock"}; break;
    }
    kdcom::failure error;
    auto link = net::open_link(io.get_executor(), *transport::parse_address(addresses.listen, error), role::target, error);
    ASSERT_TRUE(link) << error.message();
    if (GetParam() == transport_kind::tcp)
        addresses.connect += std::to_string(dynamic_cast<net::listener&>(*link).local_port());
    endpoint_config config{.role = role::target};
    config.implicit_ack = false;
    auto target = net::session::create(std::move(link), config);
    target->start();

    constexpr std::uint32_t total = 3000;
    std::size_t acknowledged = 0;
    for (std::uint32_t i = 0; i < total; ++i) {
        bytes body(4000, 0x42);
        std::memcpy(body.data(), &i, 4);
        target->async_send(wire::packet_type::state_manipulate, body, {}, [&](std::error_code ec) {
            if (!ec) ++acknowledged;
        });
    }

    auto first = std::make_unique<peer_process>(io, addresses.connect);
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (first->sequences.size() < 100 && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
    ASSERT_GE(first->sequences.size(), 100u) << "the first debugger never got going";
    first->kill();  // SIGKILL, mid-transfer
    io.poll();      // let the cancelled read of its output finish
    const std::uint32_t last_seen_by_first = first->sequences.back();
    ASSERT_LT(last_seen_by_first, total - 1);

    peer_process second(io, addresses.connect);
    while (acknowledged < total && std::chrono::steady_clock::now() < deadline) io.run_for(10ms);
    while (!second.sequences.empty() && second.sequences.back() != total - 1 && std::chrono::steady_clock::now() < deadline)
        io.run_for(10ms);
    EXPECT_EQ(acknowledged, total) << "every send completed";
    ASSERT_FALSE(second.sequences.empty());
    // The new debugger starts where the old one stopped. Not exactly: the old one acknowledged
    // every packet it decoded, but printed only those its session handed over before the kill. It
    // hands them over one at a time, yet one read (16 KiB) can hold four 4000-byte packets, all
    // acknowledged at once; and the packet in flight may arrive twice across the reset. So the new
    // one starts at the last printed packet, or at most a few after it.
    EXPECT_GE(second.sequences.front(), last_seen_by_first) << "nothing the old debugger saw is sent again, but the packet in flight";
    EXPECT_LE(second.sequences.front(), last_seen_by_first + 8) << "resumed near the packet in flight";
    for (std::size_t i = 1; i < second.sequences.size(); ++i)
        ASSERT_EQ(second.sequences[i], second.sequences[i - 1] + 1) << "in order, nothing skipped or repeated";
    EXPECT_EQ(second.sequences.back(), total - 1);
    second.kill();
    target->close();
    io.run_for(20ms);
}

INSTANTIATE_TEST_SUITE_P(Transports, ProcessRestart,
                         ::testing::Values(transport_kind::tcp, transport_kind::unix_socket, transport_kind::fifo,
                                           transport_kind::shm),
                         [](const ::testing::TestParamInfo<transport_kind>& test) { return to_string(test.param); });

TEST(LineRate, ALimitedLinkTakesAsLongAsTheWireWould) {
    // 4017 bytes at 115200 bps, 10 bits a byte, take about 0.35 s.
    asio::io_context io;
    scratch_dir dir;
    const std::string path = dir.path + "/kd.sock";
    kdcom::failure error;
    auto server = net::open_link(io.get_executor(), *transport::parse_address("unix-listen://" + path, error),
                                 role::target, error);
    auto client = net::open_link(io.get_executor(), *transport::parse_address("unix://" + path + "?rate=115200", error),
                                 role::debugger, error);
    ASSERT_TRUE(server && client) << error.message();
    auto target = net::session::create(std::move(server), {.role = role::target});
    auto debugger = net::session::create(std::move(client), {.role = role::debugger});
    target->start();
    debugger->start();
    bytes got;
    target->async_receive([&](std::error_code, net::received_packet p) { got = std::move(p.body); });
    const bytes body(4000, 0x77);
    bool done = false;
    const auto started = std::chrono::steady_clock::now();
    debugger->async_send(wire::packet_type::state_manipulate, body, {}, [&](std::error_code) { done = true; });
    while (!done && std::chrono::steady_clock::now() - started < 10s) io.run_for(5ms);
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_TRUE(done);
    EXPECT_EQ(got, body);
    EXPECT_GE(took, 330ms) << "the RESET and the packet were paced like a 115200 bps line";
    debugger->close();
    target->close();
    io.run_for(20ms);
}
}  // namespace
