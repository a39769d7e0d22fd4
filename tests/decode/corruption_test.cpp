// Every single-byte corruption of a valid multi-packet stream, at every position and with every
// other value: the decoder never delivers a packet whose body differs from what was sent, and
// every packet the corruption did not touch is still delivered.
//
// KDCOM protects the body (checksum, ByteCount, trailer) but not the header's PacketType and
// PacketId fields: a corrupted type or id that is still valid cannot be detected by any KDCOM
// receiver. Nor is a control packet's Checksum, which receivers ignore. The test
// allows exactly that and nothing more; docs/protocol.md explains how the
// endpoint copes (ids it does not expect are answered with RESEND).
#include <gtest/gtest.h>

#include "support/decode_helpers.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using wire::packet_type;

struct original {
    delivered_packet packet;
    std::size_t size;
};

bool in_range(std::size_t p, std::size_t begin, std::size_t length) {
    return p >= begin && p < begin + length;
}

// Whether `got` is the packet `sent` with only the field that byte `p` belongs to changed.
bool is_undetectable_header_change(const delivered_packet& got, const original& sent, std::size_t p) {
    if (got.offset != sent.packet.offset || got.body != sent.packet.body) return false;
    wire::packet_header expected = sent.packet.header;
    if (in_range(p, got.offset + 4, 2)) expected.type = got.header.type;
    if (in_range(p, got.offset + 8, 4)) expected.id = got.header.id;
    if (wire::is_control_type(sent.packet.header.type) && in_range(p, got.offset + 12, 4))
        expected.checksum = got.header.checksum;  // a field every receiver ignores
    return got.header == expected;
}

TEST(Corruption, NoSingleByteCorruptionDeliversAWrongBodyOrLosesAnUntouchedPacket) {
    std::vector<original> sent;
    bytes stream;
    auto add = [&](const bytes& frame, const bytes& body) {
        const auto h = wire::load_header(std::span(frame).first<wire::header_size>());
        sent.push_back({{stream.size(), h, body}, frame.size()});
        append(stream, frame);
    };
    const bytes manipulate_body = [] {
        bytes b(56);
        for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(i * 7);
        return b;
    }();
    const bytes print_body(20, 0x41), empty_body, zeros(24, 0);
    add(control_frame(packet_type::reset, 0), {});
    add(data_frame(packet_type::state_manipulate, 0x80800000, manipulate_body), manipulate_body);
    add(control_frame(packet_type::acknowledge, 0x80800000), {});
    add(data_frame(packet_type::debug_io, 0x80800001, print_body), print_body);
    add(data_frame(packet_type::trace_io, 0x80800000, empty_body), empty_body);
    add(data_frame(packet_type::file_io, 0x80800001, zeros), zeros);  // zeros: sum-neutral bytes
    add(control_frame(packet_type::resend, 0), {});

    ASSERT_EQ(decode_whole(stream).packets.size(), sent.size());

    std::size_t undetectable = 0;
    for (std::size_t p = 0; p < stream.size(); ++p) {
        for (int v = 0; v < 256; ++v) {
            if (v == stream[p]) continue;
            bytes corrupted = stream;
            corrupted[p] = static_cast<std::uint8_t>(v);
            const auto r = decode_whole(corrupted);

            for (const auto& got : r.packets) {
                bool ok = false;
                for (const auto& s : sent) {
                    if (got == s.packet) ok = true;
                    else if (in_range(p, s.packet.offset, s.size) && is_undetectable_header_change(got, s, p)) {
                        ok = true;
                        ++undetectable;
                    }
                }
                ASSERT_TRUE(ok) << "corrupting byte " << p << " to " << v
                                << " delivered a packet that was never sent at offset " << got.offset;
            }
            for (const auto& s : sent) {
                if (in_range(p, s.packet.offset, s.size)) continue;
                const bool found = std::find(r.packets.begin(), r.packets.end(), s.packet) != r.packets.end();
                ASSERT_TRUE(found) << "corrupting byte " << p << " to " << v
                                   << " lost the untouched packet at " << s.packet.offset;
            }
            ASSERT_EQ(r.packet_bytes + r.breakins + r.garbage_bytes, corrupted.size());
        }
    }
    // Type and id corruptions that stay valid do get through, as they must in KDCOM; make sure the
    // test saw them, so the allowance above is not silently covering something else.
    EXPECT_GT(undetectable, 0u);
}
}  // namespace
