// kdcom's tools with their default settings against models of other programs' KDCOM targets
// served at a real address (peer_model_server.cpp), as a user points them at a VM's serial line:
// kdcom-sim's debugger reads memory with every byte checked, continues, and a second run attaches
// again to the same, now running, target (a persistent line); kdcom-replay replays the debugger's
// side of a session recorded against the model and finds the target's side unchanged.
#include <gtest/gtest.h>

#include <csignal>
#include <string>

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

INSTANTIATE_TEST_SUITE_P(Models, ToolsAgainstTargetModel, ::testing::ValuesIn(models),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                             std::string name = p.param;
                             std::erase(name, '-');
                             return name;
                         });

}  // namespace
