// The simulated link does what its fault settings say, deterministically per seed.
#include <gtest/gtest.h>

#include "kdcom/sim/link.hpp"
#include "support/decode_helpers.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;

bytes drain(sim::link& l, timestamp now) {
    bytes out;
    while (auto chunk = l.take(now)) append(out, *chunk);
    return out;
}

bytes counting(std::size_t n) {
    bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i);
    return b;
}

TEST(SimLink, APerfectLinkDeliversEveryByteInOrderAfterItsDelay) {
    sim::link l({.delay = 5ms}, 1);
    l.write(counting(100), 0ms);
    l.write(counting(50), 1ms);
    EXPECT_TRUE(drain(l, 4ms).empty());
    EXPECT_EQ(l.next_arrival(), timestamp(5ms));
    bytes expected = counting(100);
    append(expected, counting(50));
    EXPECT_EQ(drain(l, 10ms), expected);
    EXPECT_EQ(l.in_flight_bytes(), 0u);
}

TEST(SimLink, JitterNeverReordersTheStream) {
    sim::link l({.delay = 1ms, .jitter = 50ms}, 3);
    bytes expected;
    for (int i = 0; i < 200; ++i) {
        const bytes b{static_cast<std::uint8_t>(i)};
        l.write(b, timestamp(i * 100us));
        append(expected, b);
    }
    EXPECT_EQ(drain(l, 1s), expected);
}

TEST(SimLink, ChunkingSplitsWritesIntoReadsNoLargerThanTheMaximum) {
    sim::link l({.max_chunk = 7}, 2);
    l.write(counting(1000), 0ms);
    std::size_t reads = 0;
    bytes out;
    while (auto chunk = l.take(0ms)) {
        ASSERT_LE(chunk->size(), 7u);
        append(out, *chunk);
        ++reads;
    }
    EXPECT_EQ(out, counting(1000));
    EXPECT_GT(reads, 1000u / 7);
}

TEST(SimLink, PacketLossDropsWholeWritesAtAboutTheGivenRate) {
    sim::link l({.packet_loss = 0.25}, 4);
    for (int i = 0; i < 4000; ++i) l.write(bytes{1, 2, 3, 4}, 0ms);
    const double kept = static_cast<double>(drain(l, 0ms).size()) / 16000.0;
    EXPECT_NEAR(kept, 0.75, 0.03);
}

TEST(SimLink, DuplicationRepeatsAWriteRightAfterItself) {
    sim::link l({.duplication = 1.0}, 5);
    l.write(bytes{1, 2, 3}, 0ms);
    EXPECT_EQ(drain(l, 0ms), (bytes{1, 2, 3, 1, 2, 3}));
}

TEST(SimLink, CorruptionBitFlipsTruncationAndGarbageChangeTheBytes) {
    for (auto f : {sim::faults{.corruption = 0.5}, sim::faults{.bit_flip = 0.5},
                   sim::faults{.truncation = 1.0}, sim::faults{.garbage = 1.0},
                   sim::faults{.byte_loss = 0.5}}) {
        sim::link l(f, 6);
        l.write(counting(64), 0ms);
        EXPECT_NE(drain(l, 0ms), counting(64));
    }
}

TEST(SimLink, TheSameSeedGivesTheSameRun) {
    const sim::faults f{.packet_loss = 0.1, .corruption = 0.01, .duplication = 0.1, .garbage = 0.1,
                        .max_chunk = 9, .jitter = 3ms};
    sim::link a(f, 42), b(f, 42), c(f, 43);
    for (int i = 0; i < 100; ++i) {
        a.write(counting(50), timestamp(i * 1ms));
        b.write(counting(50), timestamp(i * 1ms));
        c.write(counting(50), timestamp(i * 1ms));
    }
    const bytes ra = drain(a, 1s), rb = drain(b, 1s), rc = drain(c, 1s);
    EXPECT_EQ(ra, rb);
    EXPECT_NE(ra, rc);
}
}  // namespace
