// Inputs of any length are read in bounded memory: kdcom-replay plays, and kdcom-dump decodes, a
// packet script or a capture holding 32 MiB of packet bodies with no more memory than it needs for
// a short one, whether it reads a file or standard input.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "kdcom/text/hex.hpp"
#include "support/net_pair.hpp"
#include "support/tool_process.hpp"

namespace {
using namespace kdcom::test;

// What a long input may cost over a short one. Holding a whole input cost its bodies and more
// (33 MiB over for these scripts, 35 MiB for the capture, measured before it was streamed).
constexpr long growth_limit_kib = 4 * 1024;

struct measured_run {
    int status = -1;
    long peak_kib = -1;
    std::string out;
};

measured_run run_measured(const char* program, const std::vector<std::string>& args, const std::string& output,
                          const std::string& input = {}) {
    tool_process p(program, args, output, input);
    measured_run r;
    r.status = p.wait_exit();
    r.peak_kib = p.peak_kib;
    r.out = p.output();
    return r;
}

// A packet script of `packets` packets with random bodies of `body_size` bytes, both ways.
void write_script(const std::string& path, int packets, std::size_t body_size) {
    std::mt19937 rng(7);
    std::ofstream out(path);
    kdcom::test::bytes body(body_size);
    for (int i = 0; i < packets; ++i) {
        for (auto& b : body) b = static_cast<std::uint8_t>(rng());
        out << "{\"dir\":\"" << (i % 2 ? "t2d" : "d2t") << "\",\"type\":2,\"body\":\"" << kdcom::text::to_hex(body)
            << "\"}\n";
    }
}

void expect_within_limit(const measured_run& small, const measured_run& large, const std::string& what) {
    ASSERT_GT(small.peak_kib, 0);
    EXPECT_LT(large.peak_kib - small.peak_kib, growth_limit_kib)
        << what << ": a peak of " << large.peak_kib << " KiB against " << small.peak_kib << " KiB for a short input";
}

TEST(LongInput, KdcomReplayPlaysALongScriptInTheMemoryOfAShortOne) {
    scratch_dir dir;
    const std::string short_script = dir.path + "/short.jsonl", long_script = dir.path + "/long.jsonl";
    write_script(short_script, 2, 4000);
    write_script(long_script, 8192, 4000);  // 32 MiB of bodies, 64 MiB of text
    const auto small = run_measured(KDCOM_REPLAY_PATH, {short_script}, dir.path + "/short.txt");
    ASSERT_EQ(small.status, 0) << small.out;

    // A file is read twice (its totals first, then as it plays); standard input once.
    const auto from_file = run_measured(KDCOM_REPLAY_PATH, {long_script}, dir.path + "/file.txt");
    EXPECT_EQ(from_file.status, 0) << from_file.out;
    EXPECT_NE(from_file.out.find("8192 data packets"), std::string::npos) << from_file.out;
    EXPECT_NE(from_file.out.find("result: all 8192 packets matched"), std::string::npos) << from_file.out;
    expect_within_limit(small, from_file, "a script file");

    const auto from_stdin = run_measured(KDCOM_REPLAY_PATH, {"-"}, dir.path + "/stdin.txt", long_script);
    EXPECT_EQ(from_stdin.status, 0) << from_stdin.out;
    EXPECT_NE(from_stdin.out.find("played as it is read"), std::string::npos) << from_stdin.out;
    EXPECT_NE(from_stdin.out.find("result: all 8192 packets matched"), std::string::npos) << from_stdin.out;
    expect_within_limit(small, from_stdin, "a script on standard input");
}

TEST(LongInput, KdcomReplayAndKdcomDumpReadALongCaptureInTheMemoryOfAShortOne) {
    scratch_dir dir;
    const std::string short_capture = dir.path + "/short.pcapng", long_capture = dir.path + "/long.pcapng";
    ASSERT_EQ(run_command(std::string(KDCOM_SIM_PATH) + " --dump 1 --capture " + short_capture).status, 0);
    const auto recorded = run_command(std::string(KDCOM_SIM_PATH) + " --dump 32 --capture " + long_capture);
    ASSERT_EQ(recorded.status, 0) << recorded.out;

    const auto small = run_measured(KDCOM_REPLAY_PATH, {short_capture}, dir.path + "/short.txt");
    ASSERT_EQ(small.status, 0) << small.out;
    for (const bool on_stdin : {false, true}) {
        const auto large = on_stdin ? run_measured(KDCOM_REPLAY_PATH, {"-"}, dir.path + "/stdin.txt", long_capture)
                                    : run_measured(KDCOM_REPLAY_PATH, {long_capture}, dir.path + "/file.txt");
        EXPECT_EQ(large.status, 0) << large.out;
        EXPECT_NE(large.out.find("result: all "), std::string::npos) << large.out;
        expect_within_limit(small, large, on_stdin ? "kdcom-replay, a capture on standard input" : "kdcom-replay, a capture file");
    }

    const auto small_dump = run_measured(KDCOM_DUMP_PATH, {short_capture}, dir.path + "/short-dump.txt");
    ASSERT_EQ(small_dump.status, 0) << small_dump.out;
    const auto large_dump = run_measured(KDCOM_DUMP_PATH, {long_capture}, dir.path + "/dump.txt");
    EXPECT_EQ(large_dump.status, 0);
    expect_within_limit(small_dump, large_dump, "kdcom-dump, a capture");
}

}  // namespace
