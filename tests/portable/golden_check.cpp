// A dependency-free check of the wire format and the decoder, for hosts where GoogleTest is not at
// hand: scripts/check-big-endian.sh cross-compiles it for s390x (big-endian) and runs it under
// qemu, so "little-endian on the wire whatever the host" is tested, not assumed. It also runs
// natively as a ctest test.
//
//   golden_check VECTORS_DIR EXAMPLES_DIR
// Checks header bytes and checksums, then decodes every VECTORS_DIR/*.hex (and the sample stream)
// and compares the events with the .events file beside it; runs one endpoint exchange and checks
// the bytes it writes. Ends with "N passed, M failed".
#include <bit>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kdcom/decode/decoder.hpp"
#include "kdcom/decode/describe.hpp"
#include "kdcom/endpoint/endpoint.hpp"
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

// A debugger sends a packet, the target acknowledges it after a RESEND: the ids the endpoint patches
// into frames and the ACKs it writes must be little-endian on the wire.
void check_endpoint_exchange() {
    endpoint debugger({.role = role::debugger, .send_resets = false});
    endpoint target({.role = role::target});
    const std::vector<std::uint8_t> body{0x46, 0x31, 0, 0, 1, 2, 3};
    std::vector<std::uint8_t> frame, ack;
    auto collect = [](endpoint& ep, std::vector<std::uint8_t>& out, std::vector<std::uint8_t>* delivered) {
        while (auto e = ep.next_event()) {
            if (auto* t = std::get_if<events::transmit>(&*e)) out.insert(out.end(), t->bytes().begin(), t->bytes().end());
            else if (auto* p = std::get_if<events::packet_received>(&*e); p && delivered)
                delivered->assign(p->body.begin(), p->body.end());
        }
    };
    (void)debugger.send(wire::packet_type::state_manipulate, body, {}, timestamp{});
    collect(debugger, frame, nullptr);
    const std::vector<std::uint8_t> resend{0x69, 0x69, 0x69, 0x69, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    debugger.receive(resend, timestamp{});
    frame.clear();
    collect(debugger, frame, nullptr);  // the retransmission
    expect(frame.size() == 24 && frame[8] == 0x00 && frame[9] == 0x00 && frame[10] == 0x80 && frame[11] == 0x80,
           "the endpoint writes packet ids little-endian");
    std::vector<std::uint8_t> delivered;
    target.receive(frame, timestamp{});
    collect(target, ack, &delivered);
    const std::uint8_t expected_ack[16] = {0x69, 0x69, 0x69, 0x69, 0x04, 0x00, 0x00, 0x00,
                                           0x00, 0x00, 0x80, 0x80, 0x00, 0x00, 0x00, 0x00};
    expect(ack.size() == 16 && std::equal(ack.begin(), ack.end(), expected_ack), "the ACK is little-endian");
    expect(delivered == body, "the target delivers the body");
    debugger.receive(ack, timestamp{});
    bool completed = false;
    while (auto e = debugger.next_event()) completed |= std::holds_alternative<events::send_completed>(*e);
    expect(completed, "the debugger accepts the ACK");
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
    check_endpoint_exchange();
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
