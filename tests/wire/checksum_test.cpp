// The checksum is the plain 32-bit sum of the body bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "kdcom/wire/checksum.hpp"

namespace {
using kdcom::wire::checksum;

TEST(Checksum, EmptyBodySumsToZero) { EXPECT_EQ(checksum({}), 0u); }

TEST(Checksum, IsTheSumOfBytesNotOfWords) {
    const std::vector<std::uint8_t> body{0x30, 0x30, 0x00, 0x00, 0xFF};
    EXPECT_EQ(checksum(body), 0x30u + 0x30u + 0xFFu);
}

TEST(Checksum, LargestBodyDoesNotOverflowALane) {
    const std::vector<std::uint8_t> body(65535, 0xFF);
    EXPECT_EQ(checksum(body), 65535u * 255u);
}

TEST(Checksum, MatchesANaiveSumForEveryLengthAndAlignment) {
    std::mt19937 rng(7);
    std::vector<std::uint8_t> buffer(300);
    for (auto& b : buffer) b = static_cast<std::uint8_t>(rng());
    for (std::size_t start = 0; start < 9; ++start) {
        for (std::size_t length = 0; start + length <= buffer.size(); ++length) {
            const std::span<const std::uint8_t> body(buffer.data() + start, length);
            const std::uint32_t naive = std::accumulate(body.begin(), body.end(), 0u);
            ASSERT_EQ(checksum(body), naive) << "start " << start << " length " << length;
        }
    }
}

// The encoder's one-pass form: the same sum, the bytes copied exactly, nothing written past them.
TEST(Checksum, CopyAndChecksumCopiesAndSumsForEveryLengthAndAlignment) {
    std::mt19937 rng(11);
    std::vector<std::uint8_t> source(300);
    for (auto& b : source) b = static_cast<std::uint8_t>(rng());
    for (std::size_t start = 0; start < 9; ++start) {
        for (std::size_t length = 0; start + length <= source.size(); ++length) {
            const std::span<const std::uint8_t> from(source.data() + start, length);
            std::vector<std::uint8_t> to(length + 1 + start % 4, 0xEE);
            const std::uint32_t sum = kdcom::wire::copy_and_checksum(to, from);
            ASSERT_EQ(sum, std::accumulate(from.begin(), from.end(), 0u)) << "start " << start << " length " << length;
            ASSERT_TRUE(std::equal(from.begin(), from.end(), to.begin())) << "start " << start << " length " << length;
            ASSERT_TRUE(std::all_of(to.begin() + static_cast<std::ptrdiff_t>(length), to.end(), [](auto b) { return b == 0xEE; }));
        }
    }
}

TEST(Checksum, CopyAndChecksumOfTheLargestBodyDoesNotOverflowALane) {
    const std::vector<std::uint8_t> body(65535, 0xFF);
    std::vector<std::uint8_t> to(body.size());
    EXPECT_EQ(kdcom::wire::copy_and_checksum(to, body), 65535u * 255u);
    EXPECT_TRUE(to == body);
}

TEST(Checksum, ContinuesAcrossBuffers) {
    const std::vector<std::uint8_t> a{1, 2, 3}, b{250, 251};
    EXPECT_EQ(checksum(b, checksum(a)), 1u + 2 + 3 + 250 + 251);
}
}  // namespace
