// A dependency-free check of the wire format and the decoder, for hosts where GoogleTest is not at
// hand: scripts/check-big-endian.sh cross-compiles it for s390x (big-endian) and runs it under
// qemu, so "little-endian on the wire whatever the host" is tested, not assumed. It also runs
// natively as a ctest test.
//
//   golden_check VECTORS_DIR EXAMPLES_DIR
// Checks header bytes and checksums, then decodes every VECTORS_DIR/*.hex (and the sample stream)
// and compares the events with the .events file beside it. Ends with "N passed, M failed".
#include <bit>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kdcom/decode/decoder.hpp"
#include "kdcom/decode/describe.hpp"
#include "kdcom/text/hex.hpp"
#include "kdcom/wire/encoder.hpp"

namespace {
using namespace kdcom;
namespace fs = std::filesystem;

int passed = 0, failed = 0;

void expect(bool ok, const std::string& what) {
    (ok ? passed : failed)++;
    if (!ok) std::printf("FAILED: %s\n", what.c_str());
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void check_header_bytes() {
    std::uint8_t out[16];
    wire::store_header({0x69696969, wire::packet_type::acknowledge, 0x0102, 0x80800001, 0xA1B2C3D4},
                       std::span<std::uint8_t, 16>(out));
    const std::uint8_t expected[16] = {0x69, 0x69, 0x69, 0x69, 0x04, 0x00, 0x02, 0x01,
                                       0x01, 0x00, 0x80, 0x80, 0xD4, 0xC3, 0xB2, 0xA1};
    expect(std::equal(out, out + 16, expected), "store_header writes little-endian fields");
    const auto h = wire::load_header(std::span<const std::uint8_t, 16>(expected));
    expect(h.type == wire::packet_type::acknowledge && h.byte_count == 0x0102 && h.id == 0x80800001 &&
               h.checksum == 0xA1B2C3D4,
           "load_header reads little-endian fields");

    const std::uint8_t body[5] = {0x46, 0x31, 0x00, 0x00, 0xFF};
    std::uint8_t frame[22];
    std::error_code ec;
    wire::encode_data_packet(frame, wire::packet_type::state_manipulate, 0x80800001, body, ec);
    expect(!ec && frame[12] == 0x76 && frame[13] == 0x01 && frame[14] == 0 && frame[15] == 0,
           "the encoder writes the checksum little-endian");
}

void check_vector(const fs::path& input, const fs::path& events) {
    std::vector<std::uint8_t> bytes;
    if (text::parse_hex(read_file(input), bytes)) {
        expect(false, input.string() + ": unreadable hex");
        return;
    }
    std::vector<std::string> actual, expected;
    decode::decoder d;
    d.push(bytes);
    d.finish();
    while (auto e = d.next()) actual.push_back(decode::describe(*e));
    std::istringstream lines(read_file(events));
    for (std::string line; std::getline(lines, line);)
        if (!line.empty() && line[0] != '#') expected.push_back(line);
    expect(actual == expected, input.filename().string() + " decodes to " + events.filename().string());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: golden_check VECTORS_DIR EXAMPLES_DIR\n");
        return 2;
    }
    std::printf("host byte order: %s-endian\n",
                std::endian::native == std::endian::big ? "big" : "little");
    check_header_bytes();
    const fs::path vectors = fs::path(argv[1]) / "decoder";
    std::vector<fs::path> inputs;
    for (const auto& entry : fs::directory_iterator(vectors))
        if (entry.path().extension() == ".hex") inputs.push_back(entry.path());
    expect(!inputs.empty(), "golden vectors found in " + vectors.string());
    for (const auto& input : inputs) check_vector(input, fs::path(input).replace_extension(".events"));
    check_vector(fs::path(argv[2]) / "sample-session.hex", vectors / "sample-session.events");
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
