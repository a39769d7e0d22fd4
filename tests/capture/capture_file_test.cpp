// Capture files written from sessions' taps: both views of one session (the debugger's and the
// target's) hold the same traffic with the right directions, over every transport; records are on
// disk as soon as write() returns; a full disk is reported, not fatal.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "kdcom/capture/capture_file.hpp"
#include "kdcom/capture/pcapng_writer.hpp"
#include "support/capture_contents.hpp"
#include "support/net_pair.hpp"
#include "support/session_traffic.hpp"

namespace {

using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;

// The data packet bodies in one direction of a capture, in the order they went, each once: a
// retransmission (the same body again, as when a FIFO is written before its reader came and the
// packet goes again after the reset, under a new id) counts once. Bodies are numbered: no two
// different packets are equal.
std::vector<bytes> data_bodies(const capture_contents& c, capture::flow direction) {
    std::vector<bytes> bodies;
    for (const auto& p : decode_whole(c.stream(direction)).packets)
        if (p.header.is_data() && (bodies.empty() || bodies.back() != p.body)) bodies.push_back(p.body);
    return bodies;
}

class CaptureOverTransport : public ::testing::TestWithParam<transport_kind> {};

TEST_P(CaptureOverTransport, BothEndsRecordTheSameTrafficWithTheRightDirections) {
    scratch_dir files;
    session_pair pair(GetParam(), streaming(), streaming());
    std::error_code ec;
    const std::uint64_t started = capture::capture_file::now_ns();
    std::shared_ptr<capture::capture_file> at_debugger =
        capture::capture_file::create(files.path + "/debugger.pcapng", {"test", "here", "there"}, ec);
    ASSERT_TRUE(at_debugger) << ec.message();
    std::shared_ptr<capture::capture_file> at_target =
        capture::capture_file::create(files.path + "/target.pcapng", {"test", "there", "here"}, ec);
    ASSERT_TRUE(at_target) << ec.message();
    pair.debugger->set_tap(capture::capture_tap(at_debugger, role::debugger));
    pair.target->set_tap(capture::capture_tap(at_target, role::target));

    traffic down, up;
    down.start(pair.debugger, pair.target, 200);
    up.start(pair.target, pair.debugger, 200);
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!(down.done() && up.done()) && std::chrono::steady_clock::now() < deadline) pair.io.run_for(20ms);
    expect_delivered(down, up, 0);
    const std::uint64_t ended = capture::capture_file::now_ns();

    for (const auto* path : {"/debugger.pcapng", "/target.pcapng"}) {
        SCOPED_TRACE(path);
        const auto c = read_capture(files.path + path);
        ASSERT_FALSE(c.error) << c.error.message();
        EXPECT_EQ(c.info.application, "test");
        // (EXPECT_TRUE: a failure must not print 400 packets.)
        EXPECT_TRUE(data_bodies(c, capture::flow::debugger_to_target) == down.sent);
        EXPECT_TRUE(data_bodies(c, capture::flow::target_to_debugger) == up.sent);
        std::uint64_t last = 0;
        for (const auto& r : c.records) {
            EXPECT_GE(r.time_ns, last);
            EXPECT_GE(r.time_ns + 1'000'000, started);  // the two clocks are read a moment apart
            EXPECT_LE(r.time_ns, ended + 1'000'000);
            last = r.time_ns;
        }
    }
    EXPECT_EQ(at_debugger->bytes(), at_target->bytes()) << "both ends saw every byte";
}

INSTANTIATE_TEST_SUITE_P(Transports, CaptureOverTransport,
                         ::testing::Values(transport_kind::tcp, transport_kind::unix_socket, transport_kind::fifo,
                                           transport_kind::serial_pty, transport_kind::shm),
                         [](const auto& p) { return to_string(p.param); });

TEST(CaptureFile, RecordsAreOnDiskWhenWriteReturnsAndATornEndLosesOnlyItsRecord) {
    scratch_dir files;
    const std::string path = files.path + "/c.pcapng";
    std::error_code ec;
    auto c = capture::capture_file::create(path, {}, ec);
    ASSERT_TRUE(c) << ec.message();
    c->write(1000, capture::flow::debugger_to_target, bytes{0x62});
    c->write(2000, capture::flow::target_to_debugger, bytes(3000, 0x30));
    // A write larger than a record may be is split, and nothing is lost.
    c->write(3000, capture::flow::debugger_to_target, bytes(capture::pcapng::max_record_bytes + 10, 0x69));
    EXPECT_EQ(c->records(), 4u);
    auto back = read_capture(path);  // the file is still open: what was written is there
    ASSERT_FALSE(back.error) << back.error.message();
    ASSERT_EQ(back.records.size(), 4u);
    EXPECT_EQ(back.records[2].bytes.size() + back.records[3].bytes.size(), capture::pcapng::max_record_bytes + 10);

    // A writer killed in the middle of its last record: every record before it reads back.
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 5);
    back = read_capture(path);
    EXPECT_EQ(back.error, kdcom::capture::capture_errc::torn);
    EXPECT_EQ(back.records.size(), 3u);
}

TEST(CaptureFile, AFileThatCannotBeWrittenIsReportedNotFatal) {
    std::error_code ec;
    EXPECT_FALSE(capture::capture_file::create("/nonexistent-dir/c.pcapng", {}, ec));
    EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
    // /dev/full (a device, written as it stands) takes the open but no byte: the header write fails.
    EXPECT_FALSE(capture::capture_file::create("/dev/full", {}, ec));
    EXPECT_EQ(ec, std::errc::no_space_on_device);
}

std::string contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

TEST(CaptureFile, IsCreatedPrivateAndNeverWritesThroughWhatWasThereBefore) {
    scratch_dir files;
    const std::string path = files.path + "/c.pcapng";
    std::error_code ec;
    auto c = capture::capture_file::create(path, {}, ec);
    ASSERT_TRUE(c) << ec.message();
    c.reset();
    EXPECT_EQ(std::filesystem::status(path).permissions(),
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)
        << "a capture holds guest memory: 0600";

    // An existing file is refused, and left as it was; overwritten only when asked.
    std::ofstream(path) << "precious";
    std::filesystem::permissions(path, std::filesystem::perms::all);
    EXPECT_FALSE(capture::capture_file::create(path, {}, ec));
    EXPECT_EQ(ec, std::errc::file_exists);
    EXPECT_EQ(contents(path), "precious");
    ASSERT_TRUE(capture::capture_file::create(path, {}, ec, capture::existing_file::overwrite)) << ec.message();
    EXPECT_NE(contents(path), "precious");
    EXPECT_EQ(std::filesystem::status(path).permissions(),
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

    // A symbolic link planted where the capture goes (say, in a shared temp dir) is never followed,
    // even with overwrite, whether or not what it names exists.
    const std::string victim = files.path + "/victim", planted = files.path + "/planted.pcapng";
    std::ofstream(victim) << "victim";
    std::filesystem::create_symlink(victim, planted);
    for (const auto existing : {capture::existing_file::refuse, capture::existing_file::overwrite})
        EXPECT_FALSE(capture::capture_file::create(planted, {}, ec, existing));
    EXPECT_EQ(contents(victim), "victim");
    const std::string dangling = files.path + "/dangling.pcapng";
    std::filesystem::create_symlink(files.path + "/would-be-created", dangling);
    EXPECT_FALSE(capture::capture_file::create(dangling, {}, ec, capture::existing_file::overwrite));
    EXPECT_FALSE(std::filesystem::exists(files.path + "/would-be-created"));

    // A FIFO nobody reads is refused at once rather than blocking the open.
    const std::string fifo = files.path + "/live.pcapng";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_FALSE(capture::capture_file::create(fifo, {}, ec));
    EXPECT_EQ(ec, std::errc::no_such_device_or_address);
}

}  // namespace
