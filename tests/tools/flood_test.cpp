// Every listener a peer can flood keeps its memory bounded: a "debugger" that sends KD_RESETs as
// fast as it can and never reads what comes back (each RESET asks for an answer, and for the
// pending packet again) floods kdcom-bridge with a guest attached, kdcom-sim --serve (a session
// listener with the bridge and fake kernel in one process) and kdcom-proxy, for a few seconds;
// each process's peak memory must stay within a stated limit of where it started.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "support/net_pair.hpp"
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

// Floods `socket`, then checks the peak memory of `victim` against where it started.
void expect_bounded_under_flood(tool_process& victim, const std::string& socket, const char* what) {
    const long before = status_kib(victim.pid, "VmRSS");
    ASSERT_GT(before, 0);
    const auto sent = flood_resets(socket, flood_time);
    EXPECT_GT(sent, 64u << 10) << what << ": the flood reached it";
    const long peak = status_kib(victim.pid, "VmHWM");
    EXPECT_LT(peak - before, growth_limit_kib) << what << " grew from " << before << " KiB to a peak of " << peak
                                               << " KiB under a flood of " << sent << " bytes\n"
                                               << victim.output();
    // And it is still there, not crashed.
    EXPECT_EQ(::kill(victim.pid, 0), 0) << what;
}

TEST(Flood, TheBridgeWithAGuestAttached) {
    scratch_dir dir;
    ::setenv("KDCOM_SHM_DIR", dir.path.c_str(), 1);
    const std::string name = unique_shm_name(), socket = dir.path + "/kd.sock";
    tool_process bridge(KDCOM_BRIDGE_PATH, {"--guest", "shm://" + name, "--debugger", "unix-listen://" + socket},
                        dir.path + "/bridge.txt");
    ASSERT_TRUE(bridge.wait_for_output("kdcom-bridge: guest")) << bridge.output();
    tool_process kernel(KDCOM_SIM_PATH, {"--part", "kernel", "--shm", name, "--dump", "1"}, dir.path + "/kernel.txt");
    ASSERT_TRUE(bridge.wait_for_output("guest attached")) << bridge.output() << kernel.output();
    expect_bounded_under_flood(bridge, socket, "kdcom-bridge");
    ::unsetenv("KDCOM_SHM_DIR");
}

TEST(Flood, ASessionListenerServingTheTarget) {
    scratch_dir dir;
    const std::string socket = dir.path + "/kd.sock";
    tool_process served(KDCOM_SIM_PATH, {"--serve", "unix-listen://" + socket, "--dump", "1"}, dir.path + "/serve.txt");
    ASSERT_TRUE(served.wait_for_output("serving KDCOM at")) << served.output();
    expect_bounded_under_flood(served, socket, "kdcom-sim --serve");
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
    expect_bounded_under_flood(proxy, listen, "kdcom-proxy");
    ::close(t);
}

}  // namespace
