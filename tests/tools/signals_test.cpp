// Every tool stops when told, in every state it can block in: waiting for a peer, with a kernel
// stuck sending to a debugger that is not there, mid-dump with the peer SIGKILLed. Each must exit
// within 2 s with a last line that says why, and leave no socket file behind.
#include <gtest/gtest.h>

#include <poll.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/net_pair.hpp"
#include "support/tool_process.hpp"

namespace {
using namespace kdcom::test;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

struct stopped {
    int status;
    steady::duration took;
    std::string last_line;
};

// Sends `signal` to the tool and waits for its exit.
stopped stop(tool_process& tool, int signal = SIGTERM) {
    const auto start = steady::now();
    ::kill(tool.pid, signal);
    // Bounded: a tool that ignores the signal is killed after 10 s (and fails the time check).
    std::thread killer([pid = tool.pid, start] {
        while (steady::now() - start < 10s) {
            if (::kill(pid, 0) != 0) return;
            std::this_thread::sleep_for(20ms);
        }
        ::kill(pid, SIGKILL);
    });
    const int status = tool.wait_exit();
    const auto took = steady::now() - start;
    killer.join();
    std::string out = tool.output();
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return {status, took, out.substr(out.rfind('\n') + 1)};
}

TEST(Signals, AKernelStuckSendingToNoDebuggerStopsWithTheProcess) {
    scratch_dir dir;
    // kdcom-sim --serve: its kernel's boot message waits for a debugger that never comes.
    tool_process served(KDCOM_SIM_PATH, {"--serve", "unix-listen://" + dir.path + "/kd.sock", "--dump", "1"}, dir.path + "/serve.txt");
    ASSERT_TRUE(served.wait_for_output("serving KDCOM at")) << served.output();
    std::this_thread::sleep_for(300ms);
    auto s = stop(served);
    EXPECT_EQ(s.status, 0) << served.output();
    EXPECT_LT(s.took, 2s);
    EXPECT_NE(s.last_line.find("times the kernel stopped"), std::string::npos) << "its summary: " << s.last_line;
    EXPECT_FALSE(std::filesystem::exists(dir.path + "/kd.sock"));

    // The kernel as a process of its own, behind kdcom-bridge, with no debugger either.
    ::setenv("KDCOM_SHM_DIR", dir.path.c_str(), 1);
    const std::string name = unique_shm_name();
    tool_process bridge(KDCOM_BRIDGE_PATH, {"--guest", "shm://" + name, "--debugger", "unix-listen://" + dir.path + "/b.sock"},
                        dir.path + "/bridge.txt");
    ASSERT_TRUE(bridge.wait_for_output("kdcom-bridge: guest")) << bridge.output();
    tool_process kernel(KDCOM_SIM_PATH, {"--part", "kernel", "--shm", name, "--dump", "1"}, dir.path + "/kernel.txt");
    ASSERT_TRUE(bridge.wait_for_output("guest attached")) << bridge.output();
    std::this_thread::sleep_for(300ms);
    s = stop(kernel);
    EXPECT_EQ(s.status, 0) << kernel.output();
    EXPECT_LT(s.took, 2s);
    EXPECT_NE(s.last_line.find("fake kernel: switched off"), std::string::npos) << s.last_line;
    s = stop(bridge);
    EXPECT_EQ(s.status, 0) << bridge.output();
    EXPECT_LT(s.took, 2s);
    ::unsetenv("KDCOM_SHM_DIR");
}

TEST(Signals, ToolsWaitingForAPeerStopAndSaySo) {
    scratch_dir dir;
    const std::string script = dir.path + "/s.jsonl";
    std::ofstream(script) << "{\"dir\":\"t2d\",\"type\":2,\"body\":\"00\"}\n";
    struct waiting {
        const char* program;
        std::vector<std::string> args;
        int status;                // what stopping it means: 0 for a service, 2 for a job cut short
        const char* last_words;
        std::string socket;
    };
    const std::string d = dir.path;
    const std::vector<waiting> tools = {
        {KDCOM_SIM_PATH, {"--target", "unix-listen://" + d + "/sim.sock", "--no-capture"}, 2, "terminated (SIGTERM)", d + "/sim.sock"},
        {KDCOM_KD_PATH, {"unix-listen://" + d + "/kd.sock", "-c", "vertarget"}, 2, "kdcom-kd: terminated (SIGTERM)", d + "/kd.sock"},
        {KDCOM_REPLAY_PATH, {script, "--as", "target", "--listen", "unix-listen://" + d + "/replay.sock"}, 2,
         "terminated (SIGTERM) before the end of the replay", d + "/replay.sock"},
        {KDCOM_PROXY_PATH, {"--listen", "unix-listen://" + d + "/proxy.sock", "--connect", "unix://" + d + "/none.sock"}, 0,
         "kdcom-proxy: 0 bytes", d + "/proxy.sock"},
        {KDCOM_BRIDGE_PATH, {"--guest", "shm://" + unique_shm_name(), "--debugger", "unix-listen://" + d + "/bridge.sock"}, 0,
         "statistics:", d + "/bridge.sock"},
    };
    for (const auto& t : tools) {
        tool_process tool(t.program, t.args, d + "/out.txt");
        const auto deadline = steady::now() + 5s;
        while (!std::filesystem::exists(t.socket) && steady::now() < deadline) std::this_thread::sleep_for(10ms);
        ASSERT_TRUE(std::filesystem::exists(t.socket)) << t.program << ": " << tool.output();
        const auto s = stop(tool);
        EXPECT_EQ(s.status, t.status) << t.program << ": " << tool.output();
        EXPECT_LT(s.took, 2s) << t.program;
        // Into a file, stdout is buffered and stderr is not: the last words are in the output,
        // though not always on its last line (on a terminal or a pipe they are).
        EXPECT_NE(tool.output().find(t.last_words), std::string::npos) << t.program << ": " << tool.output();
        EXPECT_FALSE(std::filesystem::exists(t.socket)) << t.program << " left its socket behind";
    }
}

TEST(Signals, OutputIntoAPipeComesLineByLineWhileTheToolRuns) {
    scratch_dir dir;
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    const std::string address = "unix-listen://" + dir.path + "/t.sock";
    std::vector<char*> argv{const_cast<char*>(KDCOM_SIM_PATH), const_cast<char*>("--target"), const_cast<char*>(address.c_str()),
                            const_cast<char*>("--no-capture"), nullptr};
    pid_t pid = -1;
    ASSERT_EQ(::posix_spawn(&pid, KDCOM_SIM_PATH, &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    // It waits for a target for ever; its first line must reach the pipe meanwhile.
    pollfd p{out[0], POLLIN, 0};
    const bool readable = ::poll(&p, 1, 3000) == 1;
    char buffer[256] = {};
    const auto n = readable ? ::read(out[0], buffer, sizeof buffer - 1) : 0;
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
    ::close(out[0]);
    EXPECT_TRUE(readable) << "nothing came through the pipe while the tool ran";
    EXPECT_GT(n, 0);
    EXPECT_EQ(std::string(buffer).rfind("debugger: waiting for the target's first words\n", 0), 0u) << buffer;
}

TEST(Signals, ADumpWhoseTargetIsKilledEndsWithTheReason) {
    scratch_dir dir;
    tool_process served(KDCOM_SIM_PATH, {"--serve", "unix-listen://" + dir.path + "/kd.sock", "--dump", "256"}, dir.path + "/serve.txt");
    ASSERT_TRUE(served.wait_for_output("serving KDCOM at")) << served.output();
    tool_process debugger(KDCOM_SIM_PATH, {"--target", "unix://" + dir.path + "/kd.sock", "--dump", "256", "--no-capture"},
                          dir.path + "/debugger.txt");
    // 256 MiB take several seconds here (its output, into a file, comes at the end): killed in
    // the middle, or earlier on a slow machine, the target is lost either way.
    std::this_thread::sleep_for(2500ms);
    ASSERT_EQ(::kill(debugger.pid, 0), 0) << "still dumping: " << debugger.output();
    ::kill(served.pid, SIGKILL);
    const auto killed = steady::now();
    const int status = debugger.wait_exit();
    EXPECT_LT(steady::now() - killed, 2s);
    EXPECT_EQ(status, 2) << debugger.output();
    EXPECT_NE(debugger.output().find("lost the target"), std::string::npos) << debugger.output();
}

}  // namespace
