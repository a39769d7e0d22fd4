// Helpers shared by the decoder tests: run a whole stream through a decoder with a chosen
// chunking and record what came out, and build streams with the encoder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "kdcom/decode/decoder.hpp"
#include "kdcom/decode/describe.hpp"
#include "kdcom/text/hex.hpp"
#include "kdcom/wire/encoder.hpp"

namespace kdcom::test {

using bytes = std::vector<std::uint8_t>;

// A data or control packet the decoder delivered, copied out of the decoder's spans.
struct delivered_packet {
    std::uint64_t offset = 0;
    wire::packet_header header;
    bytes body;
    friend bool operator==(const delivered_packet&, const delivered_packet&) = default;
};

struct decode_result {
    std::vector<std::string> log;  // describe() of every event; data events add " body=<hex>"
    std::vector<delivered_packet> packets;
    std::vector<decode::framing_error> errors;  // spans inside are not valid after decoding
    std::uint64_t breakins = 0;
    std::uint64_t garbage_bytes = 0;
    std::uint64_t packet_bytes = 0;  // bytes inside delivered packets
    std::size_t max_buffered = 0;    // the most the decoder held at once
};

// Pushes `stream` in pieces whose sizes `next_chunk` chooses (given the bytes left), then
// finish() unless told not to, and records every event.
inline decode_result decode_stream(std::span<const std::uint8_t> stream,
                                   const std::function<std::size_t(std::size_t)>& next_chunk,
                                   decode::options options = {}, bool finish = true) {
    decode::decoder d(options);
    decode_result r;
    auto drain = [&] {
        while (auto e = d.next()) {
            std::string line = decode::describe(*e);
            if (auto* p = std::get_if<decode::data_packet>(&*e)) {
                line += " body=" + text::to_hex(p->body);
                r.packets.push_back({p->offset, p->header, bytes(p->body.begin(), p->body.end())});
                r.packet_bytes += wire::data_packet_size(p->body.size());
            } else if (auto* c = std::get_if<decode::control_packet>(&*e)) {
                r.packets.push_back({c->offset, c->header, {}});
                r.packet_bytes += wire::control_packet_size;
            } else if (std::holds_alternative<decode::breakin>(*e)) {
                ++r.breakins;
            } else if (auto* g = std::get_if<decode::garbage>(&*e)) {
                r.garbage_bytes += g->length;
            } else if (auto* f = std::get_if<decode::framing_error>(&*e)) {
                r.errors.push_back(*f);
            }
            r.log.push_back(std::move(line));
            r.max_buffered = std::max(r.max_buffered, d.buffered());
        }
        r.max_buffered = std::max(r.max_buffered, d.buffered());
    };
    std::size_t at = 0;
    while (at < stream.size()) {
        const std::size_t n = std::min(std::max<std::size_t>(next_chunk(stream.size() - at), 1),
                                       stream.size() - at);
        d.push(stream.subspan(at, n));
        drain();
        at += n;
    }
    if (finish) {
        d.finish();
        drain();
    }
    return r;
}

inline decode_result decode_whole(std::span<const std::uint8_t> stream, decode::options o = {}) {
    return decode_stream(stream, [](std::size_t left) { return left; }, o);
}

inline decode_result decode_bytewise(std::span<const std::uint8_t> stream, decode::options o = {}) {
    return decode_stream(stream, [](std::size_t) { return std::size_t{1}; }, o);
}

// Two pushes: [0, split) and [split, end).
inline decode_result decode_split(std::span<const std::uint8_t> stream, std::size_t split,
                                  decode::options o = {}) {
    bool first = true;
    return decode_stream(
        stream,
        [&](std::size_t left) {
            const std::size_t n = first ? split : left;
            first = false;
            return n;
        },
        o);
}

inline bytes data_frame(wire::packet_type type, std::uint32_t id, std::span<const std::uint8_t> body) {
    bytes out(wire::data_packet_size(body.size()));
    std::error_code ec;
    out.resize(wire::encode_data_packet(out, type, id, body, ec));
    return out;
}

inline bytes control_frame(wire::packet_type type, std::uint32_t id) {
    bytes out(wire::control_packet_size);
    std::error_code ec;
    out.resize(wire::encode_control_packet(out, type, id, ec));
    return out;
}

inline void append(bytes& to, std::span<const std::uint8_t> more) {
    to.insert(to.end(), more.begin(), more.end());
}

// The whole of a file, as text or bytes.
inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + p.string());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The shared x64 breakpoint state change (tests/vectors/decoder), whole packet with its trailer.
inline std::filesystem::path breakpoint_vector_path() {
    return std::filesystem::path(KDCOM_TEST_VECTORS_DIR) / "decoder" / "x64-breakpoint-state-change.hex";
}

inline bytes from_hex(std::string_view text) {
    bytes out;
    if (text::parse_hex(text, out)) throw std::invalid_argument("bad hex in test");
    return out;
}

}  // namespace kdcom::test
