// libFuzzer target for the hex text reader: never crashes, reports positions inside the text,
// gives the same bytes, error and position however the text is split into pieces, and whatever it
// accepts survives a round trip through to_hex().
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "kdcom/text/hex.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::vector<std::uint8_t> bytes;
    kdcom::text::hex_position at;
    const std::error_code ec = kdcom::text::parse_hex(text, bytes, &at);
    // The same text in three pieces, cut where its first byte says.
    const std::size_t cut1 = size ? data[0] % (size + 1) : 0, cut2 = cut1 + (size - cut1) / 2;
    kdcom::text::hex_parser parser;
    std::vector<std::uint8_t> pieced;
    kdcom::text::hex_position pieced_at;
    std::error_code pieced_ec = parser.feed(text.substr(0, cut1), pieced, &pieced_at);
    if (!pieced_ec) pieced_ec = parser.feed(text.substr(cut1, cut2 - cut1), pieced, &pieced_at);
    if (!pieced_ec) pieced_ec = parser.feed(text.substr(cut2), pieced, &pieced_at);
    if (!pieced_ec) pieced_ec = parser.finish(&pieced_at);
    if (pieced != bytes || pieced_ec != ec || (ec && (pieced_at.line != at.line || pieced_at.column != at.column))) {
        std::fprintf(stderr, "the text in pieces parsed differently\n");
        std::abort();
    }
    if (bytes.size() > size / 2) {
        std::fprintf(stderr, "more bytes than digit pairs\n");
        std::abort();
    }
    if (ec) {
        std::size_t lines = 1;
        for (char c : text) lines += c == '\n';
        if (at.line < 1 || at.line > lines || at.column < 1 || at.column > size) {
            std::fprintf(stderr, "error position outside the text\n");
            std::abort();
        }
        return 0;
    }
    std::vector<std::uint8_t> again;
    if (kdcom::text::parse_hex(kdcom::text::to_hex(bytes), again) || again != bytes) {
        std::fprintf(stderr, "to_hex round trip changed the bytes\n");
        std::abort();
    }
    return 0;
}
