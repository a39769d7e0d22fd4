// Hex text, as in shared vectors and hand-written test input: pairs of hex digits, with whitespace
// between bytes and '#' comments to the end of the line ignored. Used by tools and tests; no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "kdcom/error.hpp"

namespace kdcom::text {

// Where parsing stopped, for messages like "file.hex:3:17: invalid character in hex text".
struct hex_position {
    std::size_t line = 1;    // 1-based
    std::size_t column = 1;  // 1-based, in bytes
};

namespace detail {
constexpr int hex_digit_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
constexpr bool is_hex_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
}  // namespace detail

// Hex text that arrives in pieces (a file read in chunks, a pipe): feed() each piece in order and
// finish() at the end. The bytes, the errors and their positions are the same however the text is
// split, and the parser keeps nothing but the byte in progress: linear in the text and constant in
// memory, whatever its line structure.
class hex_parser {
public:
    // Appends the bytes written in `piece` to `out`. Digits of one byte must be adjacent ("3030" is
    // two bytes, "3 0" is an error). On error returns the code (invalid_hex_digit or
    // odd_hex_digits), sets `where` to the offending character, and leaves in `out` the bytes
    // parsed before it; every later call returns the same error.
    std::error_code feed(std::string_view piece, std::vector<std::uint8_t>& out, hex_position* where = nullptr) {
        if (error_) return report(where);
        for (const char c : piece) {
            if (in_comment_) {
                in_comment_ = c != '\n';
            } else if (const int v = detail::hex_digit_value(c); v >= 0) {
                if (high_ < 0) {
                    high_ = v;
                    high_pos_ = pos_;
                } else {
                    out.push_back(static_cast<std::uint8_t>(high_ << 4 | v));
                    high_ = -1;
                }
            } else if (high_ >= 0) {
                const bool separator = detail::is_hex_space(c) || c == '#';
                return fail(separator ? errc::odd_hex_digits : errc::invalid_hex_digit, separator ? high_pos_ : pos_, where);
            } else if (c == '#') {
                in_comment_ = true;
            } else if (!detail::is_hex_space(c)) {
                return fail(errc::invalid_hex_digit, pos_, where);
            }
            if (c == '\n') {
                ++pos_.line;
                pos_.column = 1;
            } else {
                ++pos_.column;
            }
        }
        return {};
    }

    // The end of the text: a byte left with one digit is an error.
    std::error_code finish(hex_position* where = nullptr) {
        if (error_) return report(where);
        if (high_ >= 0) return fail(errc::odd_hex_digits, high_pos_, where);
        return {};
    }

private:
    std::error_code fail(errc e, hex_position at, hex_position* where) {
        error_ = make_error_code(e);
        error_pos_ = at;
        return report(where);
    }
    std::error_code report(hex_position* where) const {
        if (where) *where = error_pos_;
        return error_;
    }

    int high_ = -1;  // the first digit of a byte in progress
    hex_position high_pos_, pos_;
    bool in_comment_ = false;  // after '#', to the end of the line
    std::error_code error_;
    hex_position error_pos_;
};

// Appends the bytes written in `text` to `out` (hex_parser's rules, the whole text at once).
inline std::error_code parse_hex(std::string_view text, std::vector<std::uint8_t>& out,
                                 hex_position* where = nullptr) {
    hex_parser parser;
    if (const auto ec = parser.feed(text, out, where)) return ec;
    return parser.finish(where);
}

// Lower-case hex digits, no separators ("30303030").
inline std::string to_hex(std::span<const std::uint8_t> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s(bytes.size() * 2, '\0');
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        s[2 * i] = digits[bytes[i] >> 4];
        s[2 * i + 1] = digits[bytes[i] & 0xF];
    }
    return s;
}

}  // namespace kdcom::text
