// The events for a stream never depend on how its bytes were split into push() calls.
#include <gtest/gtest.h>

#include "support/random_stream.hpp"

namespace {
using namespace kdcom::test;

TEST(Chunking, RandomStreamsDecodeTheSameWholeBytewiseAndInRandomChunks) {
    for (std::uint64_t seed = 1; seed <= 200; ++seed) {
        std::mt19937_64 rng(seed);
        const auto s = make_random_stream(rng, {.packets = 12, .max_body = 600, .max_garbage = 40});
        const auto whole = decode_whole(s.stream).log;
        ASSERT_EQ(decode_bytewise(s.stream).log, whole) << "seed " << seed;
        for (std::size_t max_chunk : {2, 7, 17, 100, 1000}) {
            std::mt19937_64 chunk_rng(seed * 31 + max_chunk);
            ASSERT_EQ(decode_stream(s.stream, random_chunks(chunk_rng, max_chunk)).log, whole)
                << "seed " << seed << " chunks up to " << max_chunk;
        }
    }
}

TEST(Chunking, EverySplitPointOfAMultiPacketStreamDecodesTheSame) {
    std::mt19937_64 rng(99);
    const auto s = make_random_stream(rng, {.packets = 8, .max_body = 200, .max_garbage = 20});
    const auto whole = decode_whole(s.stream).log;
    for (std::size_t split = 1; split < s.stream.size(); ++split)
        ASSERT_EQ(decode_split(s.stream, split).log, whole) << "split at " << split;
}
}  // namespace
