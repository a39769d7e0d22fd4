// One test per decoder rule, each reading like the rule it checks (docs/protocol.md).
#include <gtest/gtest.h>

#include "support/decode_helpers.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using wire::packet_type;

const bytes ack = control_frame(packet_type::acknowledge, wire::initial_packet_id);
const bytes body56(56, 0x11);
const bytes manipulate = data_frame(packet_type::state_manipulate, wire::initial_packet_id, body56);

bytes concat(std::initializer_list<std::span<const std::uint8_t>> parts) {
    bytes out;
    for (auto p : parts) append(out, p);
    return out;
}

TEST(DecoderRules, AValidDataPacketIsDeliveredWithItsHeaderAndBody) {
    const auto r = decode_whole(manipulate);
    ASSERT_EQ(r.packets.size(), 1u);
    EXPECT_EQ(r.packets[0].offset, 0u);
    EXPECT_EQ(r.packets[0].header.type, packet_type::state_manipulate);
    EXPECT_EQ(r.packets[0].header.id, wire::initial_packet_id);
    EXPECT_EQ(r.packets[0].body, body56);
    EXPECT_TRUE(r.errors.empty());
    EXPECT_EQ(r.garbage_bytes, 0u);
}

TEST(DecoderRules, AControlPacketIsSixteenBytesWithNoTrailer) {
    const auto r = decode_whole(concat({ack, ack}));
    ASSERT_EQ(r.packets.size(), 2u);
    EXPECT_EQ(r.packets[1].offset, 16u);
    EXPECT_EQ(r.packets[1].header.type, packet_type::acknowledge);
}

TEST(DecoderRules, NothingIsDeliveredBeforeThePacketIsComplete) {
    decode::decoder d;
    d.push(std::span(manipulate).first(manipulate.size() - 1));
    EXPECT_FALSE(d.next().has_value()) << "the trailer is still missing";
    EXPECT_EQ(d.buffered(), manipulate.size() - 1);
    d.push(std::span(manipulate).last(1));
    auto e = d.next();
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(std::holds_alternative<decode::data_packet>(*e));
    EXPECT_EQ(d.buffered(), 0u);
}

TEST(DecoderRules, ALeaderIsFourIdenticalLeaderBytes) {
    // Three 'i' and an 'X' are no leader; the four 'i' after them are.
    const auto r = decode_whole(concat({from_hex("69 69 69 58"), ack}));
    ASSERT_EQ(r.packets.size(), 1u);
    EXPECT_EQ(r.packets[0].offset, 4u);
    EXPECT_EQ(r.garbage_bytes, 4u);
    EXPECT_TRUE(r.errors.empty());
}

TEST(DecoderRules, ADifferentLeaderByteRestartsTheCountAtOne) {
    // 0 0 0 i i i i...: the run of 'i' starts counting at the first 'i'.
    const auto r = decode_whole(concat({from_hex("30 30 30"), ack}));
    EXPECT_EQ(r.packets.at(0).offset, 3u);
    EXPECT_TRUE(r.errors.empty());
    // i 0 i i i i...: an 'i' after a '0' restarts at one as well.
    const auto r2 = decode_whole(concat({from_hex("69 30"), ack}));
    EXPECT_EQ(r2.packets.at(0).offset, 2u);
}

TEST(DecoderRules, AnyOtherByteResetsTheCount) {
    // 0 0 X 0 0 ...: the X breaks the run; "00X00" alone never makes a leader.
    const auto r = decode_whole(from_hex("30 30 58 30 30"));
    EXPECT_TRUE(r.packets.empty());
    EXPECT_TRUE(r.errors.empty());
    EXPECT_EQ(r.garbage_bytes, 5u);
}

TEST(DecoderRules, ABreakinByteBetweenPacketsIsReported) {
    const auto r = decode_whole(concat({ack, from_hex("62"), ack}));
    EXPECT_EQ(r.breakins, 1u);
    EXPECT_EQ(r.packets.size(), 2u);
    EXPECT_EQ(r.log.at(1), "      16  breakin");
}

TEST(DecoderRules, ABreakinByteInsideABodyIsJustData) {
    const bytes body(10, 0x62);
    const auto r = decode_whole(data_frame(packet_type::debug_io, wire::initial_packet_id, body));
    EXPECT_EQ(r.breakins, 0u);
    EXPECT_EQ(r.packets.at(0).body, body);
}

TEST(DecoderRules, ABadChecksumIsRejected) {
    bytes bad = manipulate;
    bad[12] ^= 1;
    const auto r = decode_whole(bad);
    EXPECT_TRUE(r.packets.empty());
    ASSERT_FALSE(r.errors.empty());
    EXPECT_EQ(r.errors[0].error, errc::bad_checksum);
    EXPECT_EQ(r.errors[0].offset, 0u);
    EXPECT_TRUE(r.errors[0].has_body);
    EXPECT_EQ(r.errors[0].body_checksum, 56u * 0x11u);
}

TEST(DecoderRules, AMissingTrailerIsRejected) {
    bytes bad = manipulate;
    bad.back() = 0x00;
    const auto r = decode_whole(bad);
    EXPECT_TRUE(r.packets.empty());
    ASSERT_FALSE(r.errors.empty());
    EXPECT_EQ(r.errors[0].error, errc::bad_trailer);
}

TEST(DecoderRules, AByteCountOverTheLimitIsRejectedAtTheHeader) {
    const bytes body(4001, 0);
    const bytes big = data_frame(packet_type::state_manipulate, wire::initial_packet_id, body);
    // Only the header is needed to reject it: the decoder does not wait for 4001 more bytes.
    decode::decoder d;
    d.push(std::span(big).first(16));
    auto e = d.next();
    ASSERT_TRUE(e.has_value());
    const auto* err = std::get_if<decode::framing_error>(&*e);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(err->error, errc::byte_count_too_large);
    EXPECT_EQ(err->header.byte_count, 4001);
}

TEST(DecoderRules, TheBodyLimitIsConfigurable) {
    const bytes body(6000, 3);
    const bytes big = data_frame(packet_type::state_manipulate, wire::initial_packet_id, body);
    const auto r = decode_whole(big, decode::options{8000});
    ASSERT_EQ(r.packets.size(), 1u);
    EXPECT_EQ(r.packets[0].body, body);
    EXPECT_EQ(decode::decoder(decode::options{8000}).max_frame_size(), 8017u);
    EXPECT_EQ(decode::decoder(decode::options{1 << 20}).max_body(), 65535u);
}

TEST(DecoderRules, ADataLeaderWithAControlOrUnknownTypeIsRejected) {
    for (unsigned type : {0u, 4u, 5u, 6u, 8u, 12u, 0x3030u}) {
        bytes frame = manipulate;
        frame[4] = static_cast<std::uint8_t>(type);
        frame[5] = static_cast<std::uint8_t>(type >> 8);
        const auto r = decode_whole(frame);
        EXPECT_TRUE(r.packets.empty()) << type;
        ASSERT_FALSE(r.errors.empty()) << type;
        EXPECT_EQ(r.errors[0].error, errc::unknown_packet_type) << type;
    }
}

TEST(DecoderRules, AControlLeaderWithADataTypeIsRejected) {
    bytes frame = ack;
    frame[4] = 2;
    const auto r = decode_whole(frame);
    EXPECT_TRUE(r.packets.empty());
    EXPECT_EQ(r.errors.at(0).error, errc::unknown_packet_type);
}

TEST(DecoderRules, AControlPacketsChecksumIsIgnoredByDefault) {
    // ReactOS and Windows never read it; pykdclient on Python 3 sends Checksum 0x000080C2 and two
    // stray zero bytes after each ACK and RESET.
    bytes pykd_ack = ack;
    pykd_ack[12] = 0xC2;
    pykd_ack[13] = 0x80;
    pykd_ack.push_back(0);
    pykd_ack.push_back(0);
    const auto r = decode_whole(pykd_ack);
    ASSERT_EQ(r.packets.size(), 1u);
    EXPECT_EQ(r.packets[0].header.type, packet_type::acknowledge);
    EXPECT_TRUE(r.errors.empty());
    EXPECT_EQ(r.garbage_bytes, 2u);
}

TEST(DecoderRules, AControlPacketMustHaveZeroByteCount) {
    // Else four 'i's and a type in line noise would make a control packet: a false RESET.
    bytes with_count = ack;
    with_count[6] = 1;
    EXPECT_EQ(decode_whole(with_count).errors.at(0).error, errc::malformed_control_packet);
}

TEST(DecoderRules, AStrictDecoderAlsoRejectsAControlPacketWithAChecksum) {
    bytes with_checksum = ack;
    with_checksum[12] = 1;
    const decode::options strict{.strict_control = true};
    EXPECT_EQ(decode_whole(with_checksum, strict).errors.at(0).error, errc::malformed_control_packet);
    EXPECT_TRUE(decode_whole(ack, strict).errors.empty());
}

TEST(DecoderRules, AnyIdIsDeliveredBecauseJudgingIdsIsTheEndpointsJob) {
    const auto r = decode_whole(concat({control_frame(packet_type::reset, 0xDEADBEEF),
                                        data_frame(packet_type::debug_io, 0x12345678, body56)}));
    ASSERT_EQ(r.packets.size(), 2u);
    EXPECT_EQ(r.packets[0].header.id, 0xDEADBEEFu);
    EXPECT_EQ(r.packets[1].header.id, 0x12345678u);
}

TEST(DecoderRules, ScanningResumesAfterTheFirstByteOfAFalseLeader) {
    // A false data frame claims 40 body bytes; a real ACK starts 3 bytes into it. The false frame
    // is rejected when its trailer is missing, and the ACK inside it is still found.
    bytes stream = from_hex("30 30 30 30 02 00 28 00 00 00 80 80 00 00 00 00 55 55 55");
    append(stream, ack);
    append(stream, bytes(40, 0x55));
    const auto r = decode_whole(stream);
    ASSERT_EQ(r.packets.size(), 1u);
    EXPECT_EQ(r.packets[0].offset, 19u);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].offset, 0u);
    EXPECT_EQ(r.errors[0].error, errc::bad_trailer);
}

TEST(DecoderRules, APacketStartingInsideAFalseLeaderRunIsFound) {
    // Six '0's: the first four make a false leader (type 0x3030); the real leader starts at 2.
    bytes stream = from_hex("30 30");
    append(stream, manipulate);
    const auto r = decode_whole(stream);
    ASSERT_EQ(r.packets.size(), 1u);
    EXPECT_EQ(r.packets[0].offset, 2u);
    EXPECT_EQ(r.errors.size(), 2u) << "false leaders at offsets 0 and 1";
    EXPECT_EQ(r.garbage_bytes, 2u);
}

TEST(DecoderRules, FinishReportsATruncatedPacketAndRescansItsBytes) {
    const bytes stream(manipulate.begin(), manipulate.begin() + 30);
    const auto r = decode_whole(stream);
    ASSERT_FALSE(r.errors.empty());
    EXPECT_EQ(r.errors[0].error, errc::truncated_packet);
    EXPECT_EQ(r.errors[0].frame_bytes, 30u);
    EXPECT_TRUE(r.errors[0].has_header);
    EXPECT_EQ(r.garbage_bytes, 30u) << "every byte is accounted for after finish";
}

TEST(DecoderRules, FinishOnAPartialHeaderReportsTruncation) {
    const auto r = decode_whole(std::span(ack).first(10));
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].error, errc::truncated_packet);
    EXPECT_FALSE(r.errors[0].has_header);
    EXPECT_EQ(r.errors[0].frame_bytes, 10u);
}

TEST(DecoderRules, APartialLeaderAtTheEndIsGarbageNotAnError) {
    const auto r = decode_whole(from_hex("30 30 30"));
    EXPECT_TRUE(r.errors.empty());
    EXPECT_EQ(r.garbage_bytes, 3u);
}

TEST(DecoderRules, TheDecoderContinuesAfterFinish) {
    decode::decoder d;
    d.push(std::span(ack).first(8));
    d.finish();
    std::vector<std::string> log;
    while (auto e = d.next()) log.push_back(decode::describe(*e));
    d.push(ack);
    auto e = d.next();
    ASSERT_TRUE(e.has_value());
    ASSERT_TRUE(std::holds_alternative<decode::control_packet>(*e));
    EXPECT_EQ(decode::offset_of(*e), 8u) << "offsets continue across finish()";
    EXPECT_EQ(log.size(), 2u) << "a truncation error and the garbage run";
}

TEST(DecoderRules, GarbageRunsEndBeforeTheEventThatEndsThem) {
    const auto r = decode_whole(concat({from_hex("01 02 03"), ack, from_hex("04 62 05")}));
    const std::vector<std::string> expected{
        "       0  garbage  len=3",
        "       3  control  KD_ACKNOWLEDGE(4) id=0x80800000",
        "      19  garbage  len=1",
        "      20  breakin",
        "      21  garbage  len=1",
    };
    EXPECT_EQ(r.log, expected);
}

TEST(DecoderRules, EveryByteIsInExactlyOnePacketBreakinOrGarbageRun) {
    bytes stream = from_hex("00 62 30 30 30 30 02 00 05");  // ends inside a false header
    append(stream, manipulate);
    append(stream, from_hex("69 69 69 69 04 00"));
    const auto r = decode_whole(stream);
    EXPECT_EQ(r.packet_bytes + r.breakins + r.garbage_bytes, stream.size());
}

TEST(DecoderRules, MemoryIsBoundedByOneMaximalFrame) {
    decode::decoder d;
    bytes junk(100000, wire::data_leader_byte);  // an endless run of leader bytes
    d.push(junk);
    while (d.next()) ASSERT_LE(d.buffered(), d.max_frame_size());
    EXPECT_LE(d.buffered(), d.max_frame_size());
    EXPECT_EQ(d.max_frame_size(), 4017u);
}

TEST(DecoderRules, ByteCountZeroDataPacketIsValid) {
    const auto r = decode_whole(data_frame(packet_type::trace_io, wire::initial_packet_id, {}));
    ASSERT_EQ(r.packets.size(), 1u);
    EXPECT_TRUE(r.packets[0].body.empty());
}
}  // namespace
