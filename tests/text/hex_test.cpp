// Hex text: digit pairs, whitespace and '#' comments; errors say where.
#include <gtest/gtest.h>

#include "kdcom/text/hex.hpp"

namespace {
using namespace kdcom;
using bytes = std::vector<std::uint8_t>;

TEST(Hex, ParsesPairsIgnoringWhitespaceAndComments) {
    bytes out;
    EXPECT_FALSE(text::parse_hex("# header\n30 30\tAa\r\n  ff # trailing comment 0g\n0102", out));
    EXPECT_EQ(out, (bytes{0x30, 0x30, 0xAA, 0xFF, 0x01, 0x02}));
}

TEST(Hex, EmptyAndCommentOnlyTextGiveNoBytes) {
    bytes out;
    EXPECT_FALSE(text::parse_hex("", out));
    EXPECT_FALSE(text::parse_hex("# nothing here\n\n", out));
    EXPECT_TRUE(out.empty());
}

TEST(Hex, ReportsAnInvalidCharacterWithLineAndColumn) {
    bytes out;
    text::hex_position at;
    EXPECT_EQ(text::parse_hex("30 31\n32 zz", out, &at), errc::invalid_hex_digit);
    EXPECT_EQ(at.line, 2u);
    EXPECT_EQ(at.column, 4u);
    EXPECT_EQ(out, (bytes{0x30, 0x31, 0x32})) << "bytes before the error are kept";
}

TEST(Hex, ReportsALoneDigitWhereItStarts) {
    bytes out;
    text::hex_position at;
    EXPECT_EQ(text::parse_hex("30 3 31", out, &at), errc::odd_hex_digits);
    EXPECT_EQ(at.column, 4u);
    EXPECT_EQ(text::parse_hex("30 3", out, &at), errc::odd_hex_digits);
    EXPECT_EQ(text::parse_hex("3#0", out, &at), errc::odd_hex_digits);
}

TEST(Hex, DigitAfterAHalfByteThenAnInvalidCharacterIsInvalid) {
    bytes out;
    text::hex_position at;
    EXPECT_EQ(text::parse_hex("3x", out, &at), errc::invalid_hex_digit);
    EXPECT_EQ(at.column, 2u);
}

TEST(Hex, ToHexRoundTrips) {
    const bytes b{0x00, 0x7F, 0x80, 0xFF, 0x30};
    EXPECT_EQ(text::to_hex(b), "007f80ff30");
    bytes back;
    EXPECT_FALSE(text::parse_hex(text::to_hex(b), back));
    EXPECT_EQ(back, b);
}
}  // namespace
