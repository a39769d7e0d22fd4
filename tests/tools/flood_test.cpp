// Every listener a peer can flood keeps its memory bounded: a "debugger" that sends KD_RESETs as
// fast as it can and never reads what comes back (each RESET asks for an answer, and for the
// pending packet again) floods kdcom-bridge with a guest attached, kdcom-sim --serve (a session
// listener with the bridge and fake kernel in one process) and kdcom-proxy; a guest that calls as
// fast as the shared ring takes its calls and never reads an answer floods kdcom-bridge's guest
// side. Each flood lasts a few seconds; each process's peak memory must stay within a stated limit
// of where it started.
#include <gtest/gtest.h>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <tuple>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include "kdcom/net/shm_connection.hpp"
#include "kdcom/net/shm_link.hpp"
#include "kdcom/shm/kd_pdu.hpp"
#include "support/kd_messages.hpp"
#include "support/net_pair.hpp"
#include "support/shm_guest_connection.hpp"
#include "support/tool_process.hpp"

namespace {
using namespace kdcom::test;
using namespace std::chrono_literals;

// What a process may grow by while flooded. Unbounded queues grew by about 3 MB a second here.
constexpr long growth_limit_kib = 8 * 1024;
constexpr auto flood_time = 4s;

// A line of /proc/PID/status, in KiB ("VmRSS", "VmHWM").
long status_kib(pid_t pid, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
    return -1;
}

int connect_unix(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    for (int tries = 0; tries < 200; ++tries) {
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
        std::this_thread::sleep_for(10ms);
    }
    ::close(fd);
    return -1;
}

// Sends KD_RESET control packets to `path` for `time`, reading nothing; the bytes sent.
std::uint64_t flood_resets(const std::string& path, std::chrono::milliseconds time) {
    const int fd = connect_unix(path);
    if (fd < 0) return 0;
    // leader, type 6 (KD_RESET), byte count 0, id, checksum 0: 16 bytes each
    const std::uint8_t reset[16] = {0x69, 0x69, 0x69, 0x69, 6, 0, 0, 0, 0, 0, 0x80, 0x80, 0, 0, 0, 0};
    std::string burst;
    for (int i = 0; i < 4096; ++i) burst.append(reinterpret_cast<const char*>(reset), sizeof reset);
    std::uint64_t sent = 0;
    const auto end = std::chrono::steady_clock::now() + time;
    while (std::chrono::steady_clock::now() < end) {
        const auto n = ::send(fd, burst.data(), burst.size(), MSG_NOSIGNAL);
        if (n > 0) sent += static_cast<std::uint64_t>(n);
        else if (errno == EAGAIN) {
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, 10);
        } else {
            break;
        }
    }
    ::close(fd);
    return sent;
}

// How a flooding guest calls.
enum class guest_flood {
    polls,          // break-in polls, answered at once: the answers pile up in its ring
    overlapping,    // a state change (forwarded to a debugger that never acknowledges it) and then
                    // another call before its answer: the bridge drops the guest, which attaches again
};

// Attaches to shm://`name` as a guest and calls as fast as the ring takes the calls, reading no
// answer, for `time`; a guest the bridge drops attaches again. Returns the calls sent.
std::uint64_t flood_guest_calls(const std::string& name, guest_flood how, std::chrono::milliseconds time) {
    using namespace kdcom;
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    shm::kd_pdu poll;
    poll.operation = KDCOM_SHM_PDU_RECEIVE;
    poll.packet_type = static_cast<std::uint16_t>(wire::packet_type::poll_breakin);
    const auto state = breakpoint_state_change();
    shm::kd_pdu send;
    send.operation = KDCOM_SHM_PDU_SEND;
    send.packet_type = static_cast<std::uint16_t>(wire::packet_type::state_change64);
    send.header = state;
    std::uint64_t sent = 0;
    std::uint32_t sequence = 0;
    const auto end = std::chrono::steady_clock::now() + time;
    while (std::chrono::steady_clock::now() < end) {
        std::unique_ptr<net::link> link;
        auto guest = kdcom::test::open_shm_guest(io, name, link, end);
        if (!guest) {
            std::this_thread::sleep_for(20ms);  // the bridge has not let the last one go yet
            continue;
        }
        bool dropped = false;
        std::vector<std::uint8_t> message;
        std::function<void()> call_again = [&] {
            shm::kd_pdu& pdu = how == guest_flood::overlapping && sent % 2 ? send : poll;
            pdu.sequence = ++sequence;
            message.assign(shm::kd_pdu_size(pdu), 0);
            std::error_code ec;
            shm::encode_kd_pdu(pdu, message, ec);
            guest->async_send_message(KDCOM_SHM_KD_PDU, message, [&](std::error_code e, std::size_t) {
                if (e) {
                    dropped = true;
                    return;
                }
                ++sent;
                call_again();
            });
        };
        call_again();
        while (!dropped && std::chrono::steady_clock::now() < end) io.run_one_for(10ms);
        guest->close();
        io.poll();
    }
    return sent;
}

// Runs `flood` (the bytes or calls it sent), then checks the peak memory of `victim` against where
// it started.
template <class Flood>
void expect_bounded_under_flood(tool_process& victim, Flood flood, const char* what) {
    const long before = status_kib(victim.pid, "VmRSS");
    ASSERT_GT(before, 0);
    const auto sent = flood();
    EXPECT_GT(sent, 4096u) << what << ": the flood reached it";
    const long peak = status_kib(victim.pid, "VmHWM");
    EXPECT_LT(peak - before, growth_limit_kib) << what << " grew from " << before << " KiB to a peak of " << peak
                                               << " KiB under a flood of " << sent << "\n"
                                               << victim.output();
    // And it is still there, not crashed.
    EXPECT_EQ(::kill(victim.pid, 0), 0) << what;
}

// kdcom-bridge between shm://NAME and a Unix socket, in a directory of its own, up and listening.
struct bridge_under_flood {
    ~bridge_under_flood() { ::unsetenv("KDCOM_SHM_DIR"); }

    scratch_dir dir;
    const bool shm_dir_set = ::setenv("KDCOM_SHM_DIR", dir.path.c_str(), 1) == 0;  // before the bridge starts
    const std::string name = unique_shm_name(), socket = dir.path + "/kd.sock";
    tool_process process{KDCOM_BRIDGE_PATH, {"--guest", "shm://" + name, "--debugger", "unix-listen://" + socket},
                         dir.path + "/bridge.txt"};
    const bool listening = process.wait_for_output("kdcom-bridge: guest");
};

TEST(Flood, TheBridgeWithAGuestAttached) {
    bridge_under_flood b;
    const auto& [dir, name, socket] = std::tie(b.dir, b.name, b.socket);
    tool_process& bridge = b.process;
    ASSERT_TRUE(b.shm_dir_set && b.listening) << bridge.output();
    tool_process kernel(KDCOM_SIM_PATH, {"--part", "kernel", "--shm", name, "--dump", "1"}, dir.path + "/kernel.txt");
    ASSERT_TRUE(bridge.wait_for_output("guest attached")) << bridge.output() << kernel.output();
    expect_bounded_under_flood(bridge, [&] { return flood_resets(socket, flood_time); }, "kdcom-bridge");
    // What it did at the bound is in its statistics: frames dropped, counted.
    ::kill(bridge.pid, SIGUSR1);
    ASSERT_TRUE(bridge.wait_for_output("frames dropped for a debugger that does not read ")) << bridge.output();
    EXPECT_EQ(bridge.output().find("frames dropped for a debugger that does not read 0;"), std::string::npos)
        << bridge.output();
}

TEST(Flood, TheBridgesGuestSideWithADebuggerThatNeverReads) {
    bridge_under_flood b;
    const auto& [dir, name, socket] = std::tie(b.dir, b.name, b.socket);
    tool_process& bridge = b.process;
    ASSERT_TRUE(b.shm_dir_set && b.listening) << bridge.output();
    const int debugger = connect_unix(socket);  // connects, then neither reads nor writes
    ASSERT_GE(debugger, 0);
    expect_bounded_under_flood(bridge, [&] {
            return flood_guest_calls(name, guest_flood::polls, flood_time / 2) +
                   flood_guest_calls(name, guest_flood::overlapping, flood_time / 2);
        }, "kdcom-bridge's guest side");
    const auto said = bridge.output();
    EXPECT_NE(said.find("guest dropped: malformed KD PDU"), std::string::npos) << "overlapping calls drop the guest";
    // Tens of thousands of attachments, but the log says so in a few lines a second (it wrote
    // 3 MB before, two lines for each).
    EXPECT_LT(said.size(), 16u << 10) << said.substr(0, 2000);
    EXPECT_NE(said.find("more notices not shown: over 20 a second)"), std::string::npos) << said.substr(0, 2000);
    ::close(debugger);
}

TEST(Flood, ASessionListenerServingTheTarget) {
    scratch_dir dir;
    const std::string socket = dir.path + "/kd.sock";
    tool_process served(KDCOM_SIM_PATH, {"--serve", "unix-listen://" + socket, "--dump", "1"}, dir.path + "/serve.txt");
    ASSERT_TRUE(served.wait_for_output("serving KDCOM at")) << served.output();
    expect_bounded_under_flood(served, [&] { return flood_resets(socket, flood_time); }, "kdcom-sim --serve");
}

TEST(Flood, TheProxyToATargetThatDoesNotReadEither) {
    scratch_dir dir;
    const std::string listen = dir.path + "/dbg.sock", target = dir.path + "/target.sock";
    // A target that accepts and never reads.
    const int t = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, target.c_str(), sizeof a.sun_path - 1);
    ASSERT_EQ(::bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(t, 1), 0);
    tool_process proxy(KDCOM_PROXY_PATH, {"--listen", "unix-listen://" + listen, "--connect", "unix://" + target},
                       dir.path + "/proxy.txt");
    ASSERT_TRUE(proxy.wait_for_output("kdcom-proxy: debugger")) << proxy.output();
    expect_bounded_under_flood(proxy, [&] { return flood_resets(listen, flood_time); }, "kdcom-proxy");
    ::close(t);
}

}  // namespace
