// Packets embedded in garbage at random offsets are all recovered, byte-exact and in order.
#include <gtest/gtest.h>

#include "support/random_stream.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;

TEST(Recovery, EveryPacketEmbeddedInRandomGarbageIsFound) {
    for (std::uint64_t seed = 1; seed <= 300; ++seed) {
        std::mt19937_64 rng(seed);
        const auto s = make_random_stream(
            rng, {.packets = 15, .max_garbage = 300, .garbage_probability = 0.8});
        std::mt19937_64 chunk_rng(seed);
        // Strict: random garbage can hold a control leader, a type and a zero ByteCount with a
        // junk Checksum, which the default decoder takes for a control packet.
        const auto r = decode_stream(s.stream, random_chunks(chunk_rng, 4096), {.strict_control = true});
        ASSERT_EQ(r.packets, s.packets) << "seed " << seed;
        ASSERT_EQ(r.packet_bytes + r.breakins + r.garbage_bytes, s.stream.size()) << "seed " << seed;
        ASSERT_LE(r.max_buffered, kdcom::wire::data_packet_size(kdcom::wire::default_max_body));
    }
}

TEST(Recovery, GarbageMadeOfLeaderRunsDoesNotHideAPacket) {
    // Every possible short run of leader bytes right before a packet.
    std::mt19937_64 rng(5);
    const auto s = make_random_stream(rng, {.packets = 3, .max_body = 100, .garbage_probability = 0});
    for (std::uint8_t leader : {wire::data_leader_byte, wire::control_leader_byte}) {
        for (std::size_t run = 1; run <= 8; ++run) {
            bytes stream(run, leader);
            append(stream, s.stream);
            const auto r = decode_whole(stream);
            ASSERT_EQ(r.packets.size(), s.packets.size()) << int(leader) << " x" << run;
            for (std::size_t i = 0; i < r.packets.size(); ++i) {
                EXPECT_EQ(r.packets[i].offset, s.packets[i].offset + run);
                EXPECT_EQ(r.packets[i].body, s.packets[i].body);
            }
        }
    }
}
}  // namespace
