// Golden vectors, kept like llhttp's: each tests/vectors/decoder/NAME.hex is a stream, and
// NAME.events next to it is the event log the decoder must produce for it (one describe() line per
// event, '#' comments allowed). Set KDCOM_UPDATE_GOLDEN=1 to rewrite the .events files from the
// current decoder, then review the diff by hand.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/decode_helpers.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
namespace fs = std::filesystem;

const fs::path vectors_dir = fs::path(KDCOM_TEST_VECTORS_DIR) / "decoder";

std::vector<std::string> read_event_log(const fs::path& p) {
    std::vector<std::string> lines;
    std::istringstream in(read_file(p));
    for (std::string line; std::getline(in, line);)
        if (!line.empty() && line[0] != '#') lines.push_back(line);
    return lines;
}

// The log without data bodies, as the golden files keep it.
std::vector<std::string> golden_log(const decode_result& r) {
    std::vector<std::string> out;
    for (std::string line : r.log) {
        if (auto at = line.find(" body="); at != std::string::npos) line.erase(at);
        out.push_back(line);
    }
    return out;
}

struct vector_case {
    std::string name;
    fs::path input;
    fs::path events;
};

void PrintTo(const vector_case& c, std::ostream* os) { *os << c.input.filename().string(); }

std::vector<vector_case> all_vectors() {
    std::vector<vector_case> cases;
    for (const auto& entry : fs::directory_iterator(vectors_dir))
        if (entry.path().extension() == ".hex")
            cases.push_back({entry.path().stem().string(), entry.path(),
                             fs::path(entry.path()).replace_extension(".events")});
    // The sample stream shipped for the README is a vector too.
    cases.push_back({"sample-session", fs::path(KDCOM_EXAMPLES_DIR) / "sample-session.hex",
                     vectors_dir / "sample-session.events"});
    std::sort(cases.begin(), cases.end(), [](auto& a, auto& b) { return a.name < b.name; });
    return cases;
}

class GoldenVector : public ::testing::TestWithParam<vector_case> {};

TEST_P(GoldenVector, DecodesToTheExpectedEventLog) {
    const vector_case& c = GetParam();
    const bytes input = from_hex(read_file(c.input));
    const auto actual = golden_log(decode_whole(input));
    if (std::getenv("KDCOM_UPDATE_GOLDEN")) {
        std::ofstream out(c.events);
        out << "# Expected decoder events for " << c.input.filename().string() << "\n";
        for (const auto& line : actual) out << line << "\n";
    }
    ASSERT_TRUE(fs::exists(c.events)) << c.events << " is missing";
    EXPECT_EQ(actual, read_event_log(c.events));
}

TEST_P(GoldenVector, DecodesTheSameForEveryChunking) {
    const bytes input = from_hex(read_file(GetParam().input));
    const auto whole = decode_whole(input).log;
    EXPECT_EQ(decode_bytewise(input).log, whole) << "byte by byte";
    for (std::size_t split = 1; split < input.size(); ++split)
        ASSERT_EQ(decode_split(input, split).log, whole) << "split at " << split;
}

INSTANTIATE_TEST_SUITE_P(Vectors, GoldenVector, ::testing::ValuesIn(all_vectors()),
                         [](const ::testing::TestParamInfo<vector_case>& test) {
                             std::string n = test.param.name;
                             for (char& ch : n)
                                 if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return n;
                         });

// The shared real-world vector, as the reference describes it.
const fs::path breakpoint_vector = breakpoint_vector_path();

TEST(SharedBreakpointVector, WithoutItsTrailerDeliversNothingAndWaits) {
    const bytes input = from_hex(read_file(breakpoint_vector));
    ASSERT_EQ(input.size(), 256u);
    decode::decoder d;
    d.push(input);
    EXPECT_FALSE(d.next().has_value()) << "the decoder must wait for the trailer";
    EXPECT_EQ(d.buffered(), 256u);
}

TEST(SharedBreakpointVector, WithTheTrailerAppendedDeliversExactlyThatPacket) {
    bytes input = from_hex(read_file(breakpoint_vector));
    input.push_back(wire::trailer_byte);
    const auto r = decode_whole(input);
    ASSERT_EQ(r.packets.size(), 1u);
    EXPECT_EQ(r.log.size(), 1u) << "nothing but the packet";
    const auto& p = r.packets[0];
    EXPECT_EQ(p.header.type, wire::packet_type::state_change64);
    EXPECT_EQ(p.header.id, 0x80800800u);
    EXPECT_EQ(p.header.byte_count, 240);
    EXPECT_EQ(p.header.checksum, 0x1FE6u);
    EXPECT_EQ(p.body[0], 0x30);  // NewState 0x3030, DbgKdExceptionStateChange
    EXPECT_EQ(p.body[1], 0x30);
    EXPECT_EQ(p.body[0x20], 0x03);  // ExceptionCode 0x80000003
    EXPECT_EQ(p.body[0x23], 0x80);
}
}  // namespace
