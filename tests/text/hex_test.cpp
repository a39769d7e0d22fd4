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

namespace {

// Parses `text` cut at `cut`: the bytes, the error and where it is.
struct pieced {
    std::vector<std::uint8_t> bytes;
    std::error_code ec;
    kdcom::text::hex_position at;
};
pieced parse_in_two(std::string_view text, std::size_t cut) {
    kdcom::text::hex_parser parser;
    pieced r;
    r.ec = parser.feed(text.substr(0, cut), r.bytes, &r.at);
    if (!r.ec) r.ec = parser.feed(text.substr(cut), r.bytes, &r.at);
    if (!r.ec) r.ec = parser.finish(&r.at);
    return r;
}

TEST(Hex, TextInPiecesParsesAsTheWholeWhereverItIsCut) {
    for (const std::string_view text : {"# head\n30 31\tAa\r\n  ff # note 0g\n0102", "30 3\n", "30\n31 zz", "abc", "#x"}) {
        std::vector<std::uint8_t> whole;
        kdcom::text::hex_position at;
        const auto ec = kdcom::text::parse_hex(text, whole, &at);
        for (std::size_t cut = 0; cut <= text.size(); ++cut) {
            const auto p = parse_in_two(text, cut);
            EXPECT_EQ(p.bytes, whole) << text << " cut at " << cut;
            EXPECT_EQ(p.ec, ec) << text << " cut at " << cut;
            if (ec) {
                EXPECT_EQ(std::pair(p.at.line, p.at.column), std::pair(at.line, at.column)) << text << " cut at " << cut;
            }
        }
    }
}

TEST(Hex, AByteSplitBetweenPiecesIsKeptAndAnErrorStays) {
    kdcom::text::hex_parser parser;
    std::vector<std::uint8_t> out;
    EXPECT_FALSE(parser.feed("3", out));
    EXPECT_TRUE(out.empty());
    EXPECT_FALSE(parser.feed("0 4", out));
    EXPECT_EQ(out, std::vector<std::uint8_t>{0x30});
    kdcom::text::hex_position at;
    EXPECT_EQ(parser.feed("1z", out, &at), kdcom::errc::invalid_hex_digit);
    EXPECT_EQ(out, (std::vector<std::uint8_t>{0x30, 0x41}));
    EXPECT_EQ(at.column, 6u);
    EXPECT_EQ(parser.feed("41", out), kdcom::errc::invalid_hex_digit) << "an error is final";
    EXPECT_EQ(out.size(), 2u);
}

}  // namespace
