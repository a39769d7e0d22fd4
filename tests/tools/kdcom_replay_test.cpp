// kdcom-replay as a user runs it: sessions recorded by kdcom-sim over every transport and replayed
// over the same transport with faults; a long packet script under faults over every transport;
// two replays playing the two sides of a capture against each other, and a peer that diverges;
// unusable input refused with the reason.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <filesystem>
#include <fstream>
#include <random>

#include "kdcom/text/hex.hpp"
#include "support/net_pair.hpp"
#include "support/tool_process.hpp"
#include "support/seed_count.hpp"

namespace {
using namespace kdcom::test;
namespace fs = std::filesystem;

command_result run(const std::string& program, const std::string& args) { return run_command(program + " " + args); }

command_result replay(const std::string& args) { return run(KDCOM_REPLAY_PATH, args); }

const char* const transports[] = {"mem", "unix", "tcp", "fifo", "serial", "shm"};

class ReplayOverTransport : public ::testing::TestWithParam<const char*> {};

// Record, dump, replay: what kdcom-sim recorded over a transport replays over it, under faults.
TEST_P(ReplayOverTransport, ARecordedSessionReplaysExactlyOnceUnderFaults) {
    scratch_dir dir;
    const std::string capture = dir.path + "/session.pcapng";
    const auto recorded = run(KDCOM_SIM_PATH, std::string("--dump 1 --transport ") + GetParam() +
                                                  " --faults loss=0.01,corrupt=0.01 --capture " + capture);
    ASSERT_EQ(recorded.status, 0) << recorded.out;
    const auto dumped = run(KDCOM_DUMP_PATH, "--json " + capture + " >/dev/null");
    ASSERT_EQ(dumped.status, 0) << dumped.out;
    const auto r = replay(capture + " --transport " + GetParam() + " --faults loss=0.01,corrupt=0.01,dup=0.01,garbage=0.01");
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("capture, "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("result: all "), std::string::npos) << r.out;
}

// A long packet script: every data packet type, bodies from empty to the largest, both ways.
TEST_P(ReplayOverTransport, ALongPacketScriptArrivesExactlyOnceUnderFaults) {
    scratch_dir dir;
    const std::string script = dir.path + "/script.jsonl";
    std::mt19937 rng(5);
    const int data_types[] = {1, 2, 3, 7, 9, 10, 11};
    {
        std::ofstream out(script);
        out << "\n{\"dir\":\"d2t\",\"type\":4,\"control\":true}\n";  // skipped, as are blank lines
        for (int i = 0; i < 800; ++i) {
            bytes body(i % 100 == 0 ? 4000 : rng() % 600);
            for (auto& b : body) b = static_cast<std::uint8_t>(rng());
            out << "{\"dir\":\"" << (rng() % 2 ? "d2t" : "t2d") << "\",\"type\":" << data_types[rng() % 7]
                << ",\"body\":\"" << kdcom::text::to_hex(body) << "\",\"note\":" << i << "}\n";
        }
    }
    const auto r = replay(script + " --transport " + GetParam() + " --faults loss=0.01,corrupt=0.01,dup=0.01,garbage=0.01 --seed 3");
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("packet script, 800 data packets"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("result: all 800 packets matched"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("retransmitted"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Transports, ReplayOverTransport, ::testing::ValuesIn(transports),
                         [](const ::testing::TestParamInfo<const char*>& p) { return std::string(p.param); });

std::string script_line(const char* dir, int type, const std::string& hex) {
    return std::string("{\"dir\":\"") + dir + "\",\"type\":" + std::to_string(type) + ",\"body\":\"" + hex + "\"}\n";
}

TEST(KdcomReplay, TwoReplaysPlayTheTwoSidesAndADivergingPeerIsReported) {
    scratch_dir dir;
    const std::string script = dir.path + "/s.jsonl", changed = dir.path + "/changed.jsonl";
    std::ofstream(script) << script_line("d2t", 2, "46310000") << script_line("t2d", 2, "4631000001020304")
                          << script_line("t2d", 3, "") << script_line("d2t", 2, "aabb");
    std::ofstream(changed) << script_line("d2t", 2, "46310000") << script_line("t2d", 2, "4631000001029904")
                           << script_line("t2d", 3, "") << script_line("d2t", 2, "aabb");
    const std::string socket = dir.path + "/peer.sock";

    for (const auto& [target_script, expect_status] : {std::pair{script, 0}, std::pair{changed, 1}}) {
        tool_process target(KDCOM_REPLAY_PATH, {target_script, "--as", "target", "--listen", "unix-listen://" + socket},
                            dir.path + "/target.txt");
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!fs::exists(socket) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        const auto debugger = replay(script + " --as debugger --connect unix://" + socket + " --timeout 5");
        EXPECT_EQ(debugger.status, expect_status) << debugger.out;
        EXPECT_EQ(target.wait_exit(), 0) << "the target saw what it expected: " << target.output();
        if (expect_status == 0) {
            EXPECT_NE(debugger.out.find("result: all 4 packets matched"), std::string::npos) << debugger.out;
        } else {
            EXPECT_NE(debugger.out.find("divergence: packet 2 (t2d KD_STATE_MANIPULATE"), std::string::npos) << debugger.out;
            EXPECT_NE(debugger.out.find("its body differs at byte 6 (expected 0x03, got 0x99)"), std::string::npos)
                << debugger.out;
            EXPECT_NE(debugger.out.find("result: 3 of 4 packets matched, 1 divergences"), std::string::npos) << debugger.out;
        }
    }
}

// A session kdcom-sim recorded, replayed through the library with default settings under heavy
// faults: every seed must deliver every packet exactly once. (It failed on some seeds when the
// debugger, its RESET answer lost, dropped the target's data and re-sent RESET only once a second,
// and the target gave its first DbgPrint up after 5 tries.) KDCOM_REPLAY_SEEDS sets the count.
TEST(KdcomReplay, ARecordedSessionSurvivesHeavyFaultsOnEverySeed) {
    scratch_dir dir;
    const std::string capture = dir.path + "/session.pcapng";
    ASSERT_EQ(run(KDCOM_SIM_PATH, "--dump 1 --capture " + capture).status, 0);
    const auto seeds = static_cast<int>(seed_count("KDCOM_REPLAY_SEEDS", 100));
    constexpr int at_once = 10;  // each replay mostly waits on its timers
    for (int first = 1; first <= seeds; first += at_once) {
        std::vector<std::unique_ptr<tool_process>> replays;
        for (int seed = first; seed < first + at_once && seed <= seeds; ++seed)
            replays.push_back(std::make_unique<tool_process>(
                KDCOM_REPLAY_PATH,
                std::vector<std::string>{capture, "--transport", "mem", "--faults", "loss=0.05,corrupt=0.0001,dup=0.01,garbage=0.01",
                                         "--seed", std::to_string(seed)},
                dir.path + "/replay-" + std::to_string(seed) + ".txt"));
        for (std::size_t k = 0; k < replays.size(); ++k) {
            const int seed = first + static_cast<int>(k);
            EXPECT_EQ(replays[k]->wait_exit(), 0) << "seed " << seed << "\n" << replays[k]->output();
            EXPECT_NE(replays[k]->output().find("result: all "), std::string::npos)
                << "seed " << seed << "\n" << replays[k]->output();
        }
    }
}

TEST(KdcomReplay, UnusableInputIsRefusedWithTheReason) {
    scratch_dir dir;
    const std::string bad = dir.path + "/bad.jsonl";
    std::ofstream(bad) << script_line("d2t", 2, "00") << "{\"dir\":\"up\",\"type\":2,\"body\":\"\"}\n";
    auto r = replay(bad);
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.out.find("bad.jsonl:2: \"dir\" must be \"d2t\" or \"t2d\""), std::string::npos) << r.out;
    std::ofstream(bad) << script_line("d2t", 4, "00");
    r = replay(bad);
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.out.find("\"type\" must be the number of a data packet type"), std::string::npos) << r.out;
    std::ofstream(bad) << script_line("d2t", 2, "0g");
    EXPECT_EQ(replay(bad).status, 2);
    std::ofstream(bad) << "30303030\n";
    r = replay(bad);
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.out.find("neither a pcapng capture nor a packet script"), std::string::npos) << r.out;
    // A capture torn at its end (its writer killed): the intact records are replayed, and the
    // damage said.
    const std::string capture = dir.path + "/c.pcapng";
    ASSERT_EQ(run(KDCOM_SIM_PATH, "--dump 1 --capture " + capture).status, 0);
    const auto whole = replay(capture);
    ASSERT_EQ(whole.status, 0) << whole.out;
    fs::resize_file(capture, fs::file_size(capture) - 7);
    r = replay(capture);
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("warning: " + capture + ": capture torn"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("replaying the packets before it"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("result: all"), std::string::npos) << r.out;
    // Damaged before its first record: nothing to replay.
    fs::resize_file(capture, 40);
    r = replay(capture);
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_EQ(replay(bad + " --as debugger --transport tcp --connect tcp://127.0.0.1:1").status, 2);
    // A peer that is not there is no divergence: exit 2 at once, with the reason.
    std::ofstream(bad) << script_line("t2d", 2, "00");
    const auto started = std::chrono::steady_clock::now();
    r = replay(bad + " --as debugger --connect unix://" + dir.path + "/nobody.sock");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("is unreachable or gone: unix " + dir.path + "/nobody.sock: No such file or directory"),
              std::string::npos)
        << r.out;
    EXPECT_EQ(r.out.find("divergence"), std::string::npos) << r.out;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
    EXPECT_EQ(replay(bad + " --transport carrier-pigeon").status, 2);
    EXPECT_EQ(replay(dir.path + "/missing").status, 2);
}

// Standard input cannot be read twice: it is played as it is read, and what is wrong with it is
// found where it is, after the packets before it were played.
TEST(KdcomReplay, StandardInputIsPlayedAsItIsRead) {
    scratch_dir dir;
    const std::string script = dir.path + "/s.jsonl";
    std::ofstream(script) << script_line("d2t", 2, "46310000") << script_line("t2d", 2, "4631000001020304")
                          << "{\"dir\":\"d2t\",\"type\":2,\"body\":\"0\"}\n" << script_line("t2d", 3, "");
    // A file is refused before anything is played.
    auto r = replay(script);
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("s.jsonl:3: \"body\""), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("replaying"), std::string::npos) << r.out;
    // Standard input plays the two good packets, then stops at line 3.
    r = replay("- < " + script);
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("-: packet script, played as it is read"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("replaying through mem"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("<stdin>:3: \"body\""), std::string::npos) << r.out;
    // Nothing but control packets: nothing to replay, either way.
    std::ofstream(script) << "{\"dir\":\"d2t\",\"type\":4,\"control\":true}\n";
    for (const std::string& input : {script, "- < " + script}) {
        r = replay(input);
        EXPECT_EQ(r.status, 2) << input << "\n" << r.out;
        EXPECT_NE(r.out.find("holds no data packets to replay"), std::string::npos) << input << "\n" << r.out;
    }
    // A torn capture on standard input: its intact records are played and the damage said after.
    const std::string capture = dir.path + "/c.pcapng";
    ASSERT_EQ(run(KDCOM_SIM_PATH, "--dump 1 --capture " + capture).status, 0);
    fs::resize_file(capture, fs::file_size(capture) - 7);
    r = replay("- < " + capture);
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("result: all"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("warning: <stdin>: capture torn"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("the packets before it were replayed"), std::string::npos) << r.out;
}

}  // namespace
