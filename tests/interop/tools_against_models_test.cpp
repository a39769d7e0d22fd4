// kdcom's tools with their default settings against models of other programs' KDCOM targets
// served at a real address (peer_model_server.cpp), as a user points them at a VM's serial line:
// kdcom-sim's debugger reads memory with every byte checked, continues, and a second run attaches
// again to the same, now running, target (a persistent line); kdcom-replay replays the debugger's
// side of a session recorded against the model and finds the target's side unchanged; kdcom-kd
// runs WinDbg's commands and shows the target's own bytes.
#include <gtest/gtest.h>

#include <csignal>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "kdcom/guest/memory_image.hpp"

#include "support/net_pair.hpp"
#include "support/tool_process.hpp"

namespace {
using namespace kdcom::test;

const char* const models[] = {"windows", "reactos", "reactos-old", "kdd"};

class ToolsAgainstTargetModel : public ::testing::TestWithParam<const char*> {};

TEST_P(ToolsAgainstTargetModel, KdcomSimDumpsAndAttachesAgainOnThePersistentLine) {
    scratch_dir dir;
    const std::string socket = dir.path + "/model.sock";
    tool_process model(KDCOM_PEER_MODEL_PATH, {GetParam(), "unix-listen://" + socket}, dir.path + "/model.txt");
    ASSERT_TRUE(model.wait_for_output("serving ")) << model.output();
    for (int attach = 1; attach <= 2; ++attach) {
        const auto r = run_command(std::string(KDCOM_SIM_PATH) + " --target unix://" + socket +
                                   " --dump 1 --faults loss=0 --no-capture");
        EXPECT_EQ(r.status, 0) << GetParam() << " attach " << attach << "\n" << r.out;
        EXPECT_NE(r.out.find("every byte matched"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("read them back: same"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("Break instruction exception - code 80000003"), std::string::npos) << r.out;
    }
    ::kill(model.pid, SIGTERM);
    EXPECT_EQ(model.wait_exit(), 0) << model.output();
}

TEST_P(ToolsAgainstTargetModel, KdcomReplayPlaysTheDebuggersSideOfARecordedSession) {
    scratch_dir dir;
    const std::string capture = dir.path + "/session.pcapng";
    {
        const std::string socket = dir.path + "/record.sock";
        tool_process model(KDCOM_PEER_MODEL_PATH, {GetParam(), "unix-listen://" + socket}, dir.path + "/record.txt");
        ASSERT_TRUE(model.wait_for_output("serving ")) << model.output();
        const auto r = run_command(std::string(KDCOM_SIM_PATH) + " --target unix://" + socket +
                                   " --dump 1 --faults loss=0 --capture " + capture);
        ASSERT_EQ(r.status, 0) << r.out;
    }
    const std::string socket = dir.path + "/replay.sock";
    tool_process model(KDCOM_PEER_MODEL_PATH, {GetParam(), "unix-listen://" + socket}, dir.path + "/replay.txt");
    ASSERT_TRUE(model.wait_for_output("serving ")) << model.output();
    const auto r = run_command(std::string(KDCOM_REPLAY_PATH) + " " + capture + " --as debugger --connect unix://" +
                               socket + " --timeout 10");
    EXPECT_EQ(r.status, 0) << GetParam() << "\n" << r.out;
    EXPECT_NE(r.out.find("result: all "), std::string::npos) << r.out;
}

TEST_P(ToolsAgainstTargetModel, KdcomKdRunsCommandsAttachesAgainAndLeavesTheTargetRunning) {
    scratch_dir dir;
    const std::string socket = dir.path + "/model.sock";
    tool_process model(KDCOM_PEER_MODEL_PATH, {GetParam(), "unix-listen://" + socket}, dir.path + "/model.txt");
    ASSERT_TRUE(model.wait_for_output("serving ")) << model.output();
    const kdcom::guest::memory_image image(1 << 20, 1);
    // The model's memory is the fake kernel's image, from the kernel base and from physical 0.
    auto expected = [&](std::uint64_t at, std::size_t n) {
        std::vector<std::uint64_t> v;
        for (std::size_t i = 0; i < n; ++i) v.push_back(image.pristine(at + i));
        return v;
    };
    for (int attach = 1; attach <= 2; ++attach) {
        // The first attach finds the target stopped; the second, running after .detach: it breaks in.
        const auto r = run_command(std::string(KDCOM_KD_PATH) + " unix://" + socket +
                                   " --json -c 'vertarget; db fffff800`00001000 L100; !db 2000 L20; g; .breakin; "
                                   "db fffff800`00003000 L10; .detach'");
        ASSERT_EQ(r.status, 0) << GetParam() << " attach " << attach << "\n" << r.out;
        std::vector<nlohmann::json> results;
        std::istringstream lines(r.out);
        for (std::string line; std::getline(lines, line);)
            if (!line.empty() && line[0] == '{' && line.find("\"command\"") != std::string::npos)
                results.push_back(nlohmann::json::parse(line));
        ASSERT_EQ(results.size(), 7u) << r.out;
        EXPECT_EQ(results[0]["machine"], "x64");
        EXPECT_EQ(results[1]["values"].get<std::vector<std::uint64_t>>(), expected(0x1000, 0x100)) << r.out;
        EXPECT_EQ(results[2]["values"].get<std::vector<std::uint64_t>>(), expected(0x2000, 0x20)) << r.out;
        EXPECT_EQ(results[5]["values"].get<std::vector<std::uint64_t>>(), expected(0x3000, 0x10)) << r.out;
    }
    ::kill(model.pid, SIGTERM);
    EXPECT_EQ(model.wait_exit(), 0) << model.output();
}

INSTANTIATE_TEST_SUITE_P(Models, ToolsAgainstTargetModel, ::testing::ValuesIn(models),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                             std::string name = p.param;
                             std::erase(name, '-');
                             return name;
                         });

}  // namespace
