// libFuzzer target for the decoder. The first two input bytes choose the body limit and the
// chunking; the rest is the stream. Besides crashes and sanitizer reports, it checks invariants:
// - memory: the decoder never holds more than one maximal frame;
// - every delivered packet re-encodes to exactly the bytes at its offset;
// - events come in nondecreasing offset order, and after finish() every byte of the stream is in
//   exactly one packet, break-in or garbage run;
// - the events are the same when the stream is pushed whole and in fuzzer-chosen chunks.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "kdcom/decode/decoder.hpp"
#include "kdcom/decode/describe.hpp"
#include "kdcom/text/hex.hpp"
#include "kdcom/wire/header.hpp"
#include "kdcom/wire/encoder.hpp"

namespace {
using namespace kdcom;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "decoder invariant violated: %s\n", what);
    std::abort();
}

void check(bool ok, const char* what) {
    if (!ok) fail(what);
}

std::vector<std::string> decode_checked(std::span<const std::uint8_t> stream, std::size_t max_body,
                                        std::uint32_t chunk_seed) {
    decode::decoder d(decode::options{max_body});
    std::vector<std::string> log;
    std::uint64_t accounted = 0, last_offset = 0;
    std::vector<std::uint8_t> frame;

    auto drain = [&] {
        while (auto e = d.next()) {
            check(d.buffered() <= d.max_frame_size(), "buffered more than one frame");
            const std::uint64_t offset = decode::offset_of(*e);
            check(offset >= last_offset, "events out of offset order");
            check(offset < stream.size(), "event offset past the end of the stream");
            last_offset = offset;
            std::string line = decode::describe(*e);
            if (const auto* p = std::get_if<decode::data_packet>(&*e)) {
                frame.resize(wire::data_packet_size(p->body.size()));
                std::error_code ec;
                const std::size_t n = wire::encode_data_packet(frame, p->header.type, p->header.id, p->body, ec);
                check(!ec && n == frame.size(), "a delivered data packet does not re-encode");
                check(offset + n <= stream.size() && std::memcmp(frame.data(), &stream[offset], n) == 0,
                      "a delivered data packet differs from the bytes it came from");
                check(p->body.size() <= d.max_body(), "body over the limit delivered");
                accounted += n;
                line += " body=" + text::to_hex(p->body);
            } else if (const auto* c = std::get_if<decode::control_packet>(&*e)) {
                // Its ByteCount and Checksum are delivered as they came (receivers ignore them).
                frame.resize(wire::control_packet_size);
                check(wire::is_control_type(c->header.type), "a control packet of a data type delivered");
                wire::store_header(c->header, std::span<std::uint8_t, wire::header_size>(frame.data(), wire::header_size));
                check(offset + frame.size() <= stream.size() &&
                          std::memcmp(frame.data(), &stream[offset], frame.size()) == 0,
                      "a delivered control packet differs from the bytes it came from");
                accounted += frame.size();
            } else if (const auto* b = std::get_if<decode::breakin>(&*e)) {
                check(stream[b->offset] == wire::breakin_byte, "break-in event on another byte");
                accounted += 1;
            } else if (const auto* g = std::get_if<decode::garbage>(&*e)) {
                check(g->length > 0 && g->offset + g->length <= stream.size(), "garbage run out of bounds");
                accounted += g->length;
            }
            log.push_back(std::move(line));
        }
        check(d.buffered() <= d.max_frame_size(), "buffered more than one frame");
    };

    std::size_t at = 0;
    std::uint32_t state = chunk_seed;
    while (at < stream.size()) {
        std::size_t n = stream.size() - at;
        if (chunk_seed != 0) {
            state = state * 1103515245u + 12345u;
            n = std::min<std::size_t>(n, 1 + (state >> 16) % 97);
        }
        d.push(stream.subspan(at, n));
        drain();
        at += n;
    }
    d.finish();
    drain();
    check(accounted == stream.size(), "bytes not accounted for exactly once");
    check(d.buffered() == 0, "bytes held after finish()");
    check(d.stream_offset() == stream.size(), "stream offset disagrees with the input length");
    return log;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    static constexpr std::size_t limits[] = {0, 1, 16, 100, 4000, 65535};
    const std::size_t max_body = limits[data[0] % std::size(limits)];
    const std::uint32_t chunk_seed = data[1] | 1u;
    const std::span<const std::uint8_t> stream(data + 2, size - 2);
    if (decode_checked(stream, max_body, 0) != decode_checked(stream, max_body, chunk_seed))
        fail("chunking changed the events");
    return 0;
}
