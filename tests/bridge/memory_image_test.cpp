// The fake kernel's memory image: reads give the pristine bytes (a function of the address alone,
// the same on any host byte order) at any alignment, and written bytes where they were written.
#include <gtest/gtest.h>

#include <unordered_set>
#include <vector>

#include "kdcom/guest/memory_image.hpp"

namespace {
using kdcom::guest::memory_image;

TEST(MemoryImage, ReadsThePristineBytesAtAnyAlignmentAndLength) {
    const memory_image image(1 << 16, 3);
    std::vector<std::uint8_t> out(64);
    for (std::uint64_t address = 4090; address < 4090 + 17; ++address) {
        for (std::size_t length = 0; length <= out.size(); ++length) {
            ASSERT_EQ(image.read(address, std::span(out).first(length)), length);
            for (std::size_t i = 0; i < length; ++i) ASSERT_EQ(out[i], image.pristine(address + i)) << address << "+" << i;
        }
    }
}

TEST(MemoryImage, EveryWordDiffersSoAReadFromTheWrongPlaceShows) {
    constexpr std::size_t pages = 64;
    const memory_image image(pages * memory_image::page_size), other_seed(pages * memory_image::page_size, 2);
    std::vector<std::uint8_t> bytes(pages * memory_image::page_size), other(bytes.size());
    ASSERT_EQ(image.read(0, bytes), bytes.size());
    ASSERT_EQ(other_seed.read(0, other), other.size());
    std::unordered_set<std::uint64_t> words;
    std::size_t same_as_other_seed = 0;
    for (std::size_t i = 0; i < bytes.size(); i += 8) {
        std::uint64_t word = 0, theirs = 0;
        for (std::size_t b = 0; b < 8; ++b) {
            word |= std::uint64_t{bytes[i + b]} << (8 * b);
            theirs |= std::uint64_t{other[i + b]} << (8 * b);
        }
        words.insert(word);
        same_as_other_seed += word == theirs;
    }
    EXPECT_EQ(words.size(), bytes.size() / 8) << "no two words of the image alike";
    EXPECT_EQ(same_as_other_seed, 0u) << "another seed, another image";
}

TEST(MemoryImage, ReadsStopAtTheEndAndShowWrites) {
    memory_image image(100);
    const std::vector<std::uint8_t> data{1, 2, 3};
    EXPECT_EQ(image.write(98, data), 2u);
    std::vector<std::uint8_t> out(10);
    EXPECT_EQ(image.read(95, out), 5u);
    EXPECT_EQ(out[3], 1);
    EXPECT_EQ(out[4], 2);
    EXPECT_EQ(out[2], image.pristine(97));
    EXPECT_EQ(image.read(100, out), 0u);
}
}  // namespace
