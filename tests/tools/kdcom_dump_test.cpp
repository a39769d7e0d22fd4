// kdcom-dump as a user runs it: real files, stdin, exit statuses, human and JSON output.
#include <gtest/gtest.h>

#include "kdcom/capture/pcapng_writer.hpp"
#include "kdcom/kd/describe.hpp"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kdcom/text/hex.hpp"
#include "support/decode_helpers.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
namespace fs = std::filesystem;

struct run_result {
    int status = -1;
    std::string out, err;
    std::vector<std::string> out_lines() const {
        std::vector<std::string> lines;
        std::istringstream in(out);
        for (std::string l; std::getline(in, l);) lines.push_back(l);
        return lines;
    }
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

class KdcomDump : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("kdcom_dump_test_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path write(const std::string& name, const std::string& content) {
        const fs::path p = dir_ / name;
        std::ofstream(p, std::ios::binary) << content;
        return p;
    }

    // Runs kdcom-dump with `args` (already shell-quoted where needed), optionally with a file on
    // standard input.
    run_result run(const std::string& args, const fs::path& stdin_file = {}) {
        const fs::path out = dir_ / "stdout", err = dir_ / "stderr";
        std::string cmd = std::string("'") + KDCOM_DUMP_PATH + "' " + args + " >'" + out.string() +
                          "' 2>'" + err.string() + "'";
        if (!stdin_file.empty()) cmd += " <'" + stdin_file.string() + "'";
        const int raw = std::system(cmd.c_str());
        run_result r;
        r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
        r.out = slurp(out);
        r.err = slurp(err);
        return r;
    }

    fs::path dir_;
};

const fs::path sample = fs::path(KDCOM_EXAMPLES_DIR) / "sample-session.hex";
const fs::path truncated_vector =
    fs::path(KDCOM_TEST_VECTORS_DIR) / "decoder" / "x64-breakpoint-state-change.hex";

TEST_F(KdcomDump, PrintsOneLinePerEventAndASummaryForTheSample) {
    const auto r = run("'" + sample.string() + "'");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto expected = decode_whole(from_hex(slurp(sample)));
    const auto lines = r.out_lines();
    ASSERT_EQ(lines.size(), expected.log.size() + 1);
    std::size_t packet = 0, named = 0;
    for (std::size_t i = 0; i < expected.log.size(); ++i) {
        // The decoder's line, and for a data packet the name of the KD message it carries.
        std::string line = expected.log[i].substr(0, expected.log[i].find(" body="));
        if (line.find("  data  ") != std::string::npos) {
            const auto& p = expected.packets.at(packet);
            if (const auto api = kd::message_name(p.header.type, p.body); !api.empty()) {
                line += "  " + std::string(api);
                ++named;
            }
        }
        if (line.find("  data  ") != std::string::npos || line.find("  control  ") != std::string::npos) ++packet;
        EXPECT_EQ(lines[i], line) << i;
    }
    EXPECT_GT(named, 0u) << "the sample carries KD messages the dump names";
    EXPECT_EQ(lines.back().rfind("summary: ", 0), 0u) << lines.back();
    EXPECT_NE(lines.back().find("break-ins: " + std::to_string(expected.breakins)), std::string::npos);
}

TEST_F(KdcomDump, JsonLinesHaveOnlyTheDocumentedKeysAndTheDecodedBodies) {
    const auto r = run("--json '" + sample.string() + "'");
    ASSERT_EQ(r.status, 0) << r.err;
    const std::set<std::string> allowed{"offset", "kind", "type", "type_name", "id",
                                        "length", "api", "checksum_ok", "body", "error"};
    const auto expected = decode_whole(from_hex(slurp(sample)));
    std::size_t packets = 0, breakins = 0;
    for (const auto& line : r.out_lines()) {
        const auto j = nlohmann::json::parse(line);
        for (const auto& [key, value] : j.items()) EXPECT_TRUE(allowed.count(key)) << key;
        const std::string kind = j.at("kind");
        ASSERT_TRUE(kind == "data" || kind == "control" || kind == "breakin" || kind == "error") << kind;
        if (kind == "data" || kind == "control") {
            ASSERT_LT(packets, expected.packets.size());
            const auto& p = expected.packets[packets++];
            EXPECT_EQ(j.at("offset"), p.offset);
            EXPECT_EQ(j.at("type"), static_cast<unsigned>(p.header.type));
            EXPECT_EQ(j.at("type_name"), wire::packet_type_name(p.header.type));
            EXPECT_EQ(j.at("id"), p.header.id);
            EXPECT_EQ(j.at("length"), p.header.byte_count);
            if (kind == "data") {
                const auto api = kd::message_name(p.header.type, p.body);
                if (api.empty()) EXPECT_FALSE(j.contains("api"));
                else EXPECT_EQ(j.at("api"), std::string(api));
                EXPECT_EQ(j.at("checksum_ok"), true);
                EXPECT_EQ(j.at("body"), text::to_hex(p.body));
            }
        }
        breakins += kind == "breakin";
    }
    EXPECT_EQ(packets, expected.packets.size());
    EXPECT_EQ(breakins, expected.breakins);
    EXPECT_NE(r.err.find("kdcom-dump: "), std::string::npos) << "the summary goes to stderr";
}

TEST_F(KdcomDump, ReportsATruncatedFinalPacketAsAnErrorEvent) {
    const auto r = run("--json '" + truncated_vector.string() + "'");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto first = nlohmann::json::parse(r.out_lines().at(0));
    EXPECT_EQ(first.at("kind"), "error");
    EXPECT_EQ(first.at("offset"), 0);
    EXPECT_EQ(first.at("type"), 7);
    EXPECT_EQ(first.at("length"), 240);
    EXPECT_EQ(first.at("error"), "stream ended inside a packet");
    EXPECT_FALSE(first.contains("checksum_ok")) << "the checksum of a missing body is unknown";
}

TEST_F(KdcomDump, ReadsRawBytesFromAFileAndFromStdin) {
    const bytes stream = from_hex(slurp(sample));
    const fs::path raw = write("sample.bin", std::string(stream.begin(), stream.end()));
    const auto from_hex_file = run("--json '" + sample.string() + "'");
    const auto from_raw_file = run("--json '" + raw.string() + "'");
    const auto from_stdin = run("--json -", raw);
    ASSERT_EQ(from_raw_file.status, 0) << from_raw_file.err;
    ASSERT_EQ(from_stdin.status, 0) << from_stdin.err;
    EXPECT_EQ(from_raw_file.out, from_hex_file.out);
    EXPECT_EQ(from_stdin.out, from_hex_file.out);
}

TEST_F(KdcomDump, ForcedFormatOverridesDetection) {
    // "3030" is hex text for two bytes, or four raw bytes of leader.
    const fs::path f = write("ambiguous", "30303030");
    const auto as_raw = run("--format raw '" + f.string() + "'");
    const auto as_hex = run("--format hex '" + f.string() + "'");
    ASSERT_EQ(as_raw.status, 0);
    ASSERT_EQ(as_hex.status, 0);
    EXPECT_NE(as_raw.out.find("summary: 8 bytes"), std::string::npos) << as_raw.out;
    EXPECT_NE(as_hex.out.find("summary: 4 bytes"), std::string::npos) << as_hex.out;
}

TEST_F(KdcomDump, MalformedHexIsReportedWithItsPositionAfterTheGoodEvents) {
    const fs::path f = write("bad.hex",
                             "69 69 69 69 04 00 00 00 00 00 80 80 00 00 00 00\n"
                             "# next line is broken\n"
                             "30 3x 30\n");
    const auto r = run("--format hex '" + f.string() + "'");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.out.find("control  KD_ACKNOWLEDGE(4)"), std::string::npos) << "good events are kept";
    EXPECT_NE(r.err.find("bad.hex:3:5: invalid character in hex text"), std::string::npos) << r.err;
}

// Hex text with no line breaks at all (what `od | tr -d ' \n'` makes) is decoded as it arrives:
// the reader keeps nothing back waiting for a newline.
TEST_F(KdcomDump, HexTextWithoutLineBreaksIsDecodedAsItArrives) {
    std::vector<std::uint8_t> stream;
    ASSERT_FALSE(text::parse_hex(slurp(sample), stream));
    const std::string one_line = text::to_hex(stream);
    int in[2], out[2];
    ASSERT_EQ(::pipe(in), 0);
    ASSERT_EQ(::pipe(out), 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(in[0], STDIN_FILENO);
        ::dup2(out[1], STDOUT_FILENO);
        ::close(in[1]);
        ::close(out[0]);
        ::execl(KDCOM_DUMP_PATH, KDCOM_DUMP_PATH, "--format", "hex", "-", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    // The whole session, many times over, on one line: more than one read of the input (64 KiB).
    // The pipe stays open; a thread writes while this one reads what comes out.
    std::string many;
    while (many.size() < 100 * 1024) many += one_line;
    std::thread writer([&] { (void)!::write(in[1], many.data(), many.size()); });
    std::string seen;
    char buffer[4096];
    for (int i = 0; i < 500 && seen.find("data ") == std::string::npos; ++i) {
        pollfd p{out[0], POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        const auto n = ::read(out[0], buffer, sizeof buffer);
        if (n <= 0) break;
        seen.append(buffer, static_cast<std::size_t>(n));
    }
    EXPECT_NE(seen.find("data "), std::string::npos) << "events before the end of the input: " << seen.substr(0, 200);
    std::thread drain([&] {
        while (::read(out[0], buffer, sizeof buffer) > 0) {
        }
    });
    writer.join();
    ::close(in[1]);
    drain.join();
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(KdcomDump, UnreadableInputExitsWithTwoAndSaysWhy) {
    const auto missing = run("'" + (dir_ / "no-such-file").string() + "'");
    EXPECT_EQ(missing.status, 2);
    EXPECT_NE(missing.err.find("no-such-file: No such file or directory"), std::string::npos) << missing.err;
    const auto directory = run("'" + dir_.string() + "'");
    EXPECT_EQ(directory.status, 2);
    EXPECT_NE(directory.err.find("is a directory"), std::string::npos) << directory.err;
}

// A capture as kdcom-proxy writes one: a break-in, a GetVersion request split across two records,
// the target's ACK; then, if `torn`, half of one more record.
std::string sample_capture(bool torn) {
    using capture::flow;
    bytes request_body(0x38, 0);
    request_body[0] = 0x46, request_body[1] = 0x31;  // DbgKdGetVersionApi
    const bytes request = data_frame(wire::packet_type::state_manipulate, 0x80800000, request_body);
    const bytes ack = control_frame(wire::packet_type::acknowledge, 0x80800000);
    const std::uint64_t t0 = 1'700'000'000'000'000'000u;
    bytes file;
    capture::pcapng::append_file_header(file, {"test", "pipe:debugger", "fifo:///vm"});
    capture::pcapng::append_record(file, t0, flow::debugger_to_target, bytes{0x62});
    capture::pcapng::append_record(file, t0 + 1'000'000, flow::debugger_to_target, std::span(request).first(10));
    capture::pcapng::append_record(file, t0 + 2'000'000, flow::debugger_to_target, std::span(request).subspan(10));
    capture::pcapng::append_record(file, t0 + 3'000'000, flow::target_to_debugger, ack);
    if (torn) {
        bytes more;
        capture::pcapng::append_record(more, t0 + 4'000'000, flow::target_to_debugger, ack);
        file.insert(file.end(), more.begin(), more.begin() + 20);
    }
    return {file.begin(), file.end()};
}

TEST_F(KdcomDump, CapturesPrintTimeAndDirectionBeforeEachEvent) {
    const auto r = run("'" + write("c.pcapng", sample_capture(false)).string() + "'");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto lines = r.out_lines();
    ASSERT_EQ(lines.size(), 4u) << r.out;
    EXPECT_EQ(lines[0].rfind("   0.000000000 d2t ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find("breakin"), std::string::npos) << lines[0];
    // The request completes in the third record, 2 ms in.
    EXPECT_EQ(lines[1].rfind("   0.002000000 d2t ", 0), 0u) << lines[1];
    EXPECT_NE(lines[1].find("KD_STATE_MANIPULATE"), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("DbgKdGetVersionApi"), std::string::npos) << lines[1];
    EXPECT_EQ(lines[2].rfind("   0.003000000 t2d ", 0), 0u) << lines[2];
    EXPECT_NE(lines[2].find("KD_ACKNOWLEDGE"), std::string::npos) << lines[2];
    EXPECT_NE(lines[3].find("capture of 4 records, debugger pipe:debugger, target fifo:///vm"), std::string::npos)
        << lines[3];
}

TEST_F(KdcomDump, CaptureJsonLinesStartWithTimeAndDirection) {
    const auto r = run("--json '" + write("c.pcapng", sample_capture(false)).string() + "'");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto lines = r.out_lines();
    ASSERT_EQ(lines.size(), 3u) << r.out;
    const auto request = nlohmann::ordered_json::parse(lines[1]);
    EXPECT_EQ(request.begin().key(), "time");
    EXPECT_DOUBLE_EQ(request.at("time").get<double>(), 0.002);
    EXPECT_EQ(request.at("dir"), "d2t");
    EXPECT_EQ(request.at("offset"), 1) << "offsets count within the direction's stream";
    EXPECT_EQ(request.at("api"), "DbgKdGetVersionApi");
    EXPECT_EQ(nlohmann::json::parse(lines[2]).at("dir"), "t2d");
}

TEST_F(KdcomDump, EndpointNamesFromACaptureReachTheTerminalEscaped) {
    bytes file;
    // A window title (OSC ... BEL), a colour, a NUL: written raw, a terminal would act on them.
    capture::pcapng::append_file_header(file, {"test", std::string("\x1b]0;owned\x07", 10), std::string("vm\x1b[31m\0x", 9)});
    capture::pcapng::append_record(file, 1'000, capture::flow::debugger_to_target, bytes{0x62});
    const auto r = run("'" + write("names.pcapng", {file.begin(), file.end()}).string() + "'");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find('\x07'), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find('\0'), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(R"(debugger \x1b]0;owned\x07, target vm\x1b[31m\x00x)"), std::string::npos) << r.out;
}

TEST_F(KdcomDump, ARecordStampedBeforeTheFirstIsNotGivenANegativeTime) {
    bytes file;
    capture::pcapng::append_file_header(file, {"test", "d", "t"});
    capture::pcapng::append_record(file, 5'000'000'000u, capture::flow::debugger_to_target, bytes{0x62});
    capture::pcapng::append_record(file, 0, capture::flow::debugger_to_target, bytes{0x62});
    const auto r = run("'" + write("stamps.pcapng", {file.begin(), file.end()}).string() + "'");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto lines = r.out_lines();
    ASSERT_EQ(lines.size(), 3u) << r.out;
    EXPECT_EQ(lines[1].rfind("   0.000000000 d2t ", 0), 0u) << "shown at the first record's time: " << lines[1];
    EXPECT_EQ(lines[1].find('-'), std::string::npos) << lines[1];
}

TEST_F(KdcomDump, ATornCaptureKeepsWhatCameBeforeAndExitsWithTwo) {
    const auto r = run("'" + write("torn.pcapng", sample_capture(true)).string() + "'");
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.out_lines().size(), 4u) << "three events and the summary: " << r.out;
    EXPECT_NE(r.err.find("torn.pcapng: capture torn"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("20 bytes of the last block present"), std::string::npos) << r.err;
    // Forced to read something else as a capture: said plainly.
    const auto wrong = run("--format pcapng '" + sample.string() + "'");
    EXPECT_EQ(wrong.status, 2);
    EXPECT_NE(wrong.err.find("not a pcapng capture"), std::string::npos) << wrong.err;
}

TEST_F(KdcomDump, UnusableArgumentsExitWithTwo) {
    EXPECT_EQ(run("").status, 2);
    EXPECT_EQ(run("--no-such-option x").status, 2);
    EXPECT_EQ(run("--format morse x").status, 2);
    EXPECT_EQ(run("--max-body 70000 x").status, 2);
}

TEST_F(KdcomDump, HelpDescribesTheToolAndExitsWithZero) {
    const auto r = run("--help");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("--json"), std::string::npos);
    EXPECT_NE(r.out.find("--max-body"), std::string::npos);
}

TEST_F(KdcomDump, MaxBodyRaisesTheLimit) {
    const bytes body(5000, 1);
    const bytes frame = data_frame(wire::packet_type::state_manipulate, wire::initial_packet_id, body);
    const fs::path f = write("big.bin", std::string(frame.begin(), frame.end()));
    const auto by_default = run("--json '" + f.string() + "'");
    const auto raised = run("--json --max-body 5000 '" + f.string() + "'");
    EXPECT_EQ(nlohmann::json::parse(by_default.out_lines().at(0)).at("error"),
              "ByteCount over the body limit");
    EXPECT_EQ(nlohmann::json::parse(raised.out_lines().at(0)).at("kind"), "data");
}
}  // namespace
