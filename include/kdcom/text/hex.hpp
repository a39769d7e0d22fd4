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

// Appends the bytes written in `text` to `out`. Digits of one byte must be adjacent ("3030" is two
// bytes, "3 0" is an error). On error returns the code (invalid_hex_digit or odd_hex_digits), sets
// `where` to the offending character, and leaves in `out` the bytes parsed before it.
inline std::error_code parse_hex(std::string_view text, std::vector<std::uint8_t>& out,
                                 hex_position* where = nullptr) {
    hex_position pos;
    int high = -1;  // the first digit of a byte in progress
    hex_position high_pos;
    auto fail = [&](errc e, hex_position at) {
        if (where) *where = at;
        return make_error_code(e);
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const int v = detail::hex_digit_value(c);
        if (v >= 0) {
            if (high < 0) {
                high = v;
                high_pos = pos;
            } else {
                out.push_back(static_cast<std::uint8_t>(high << 4 | v));
                high = -1;
            }
        } else if (high >= 0) {
            return fail(detail::is_hex_space(c) || c == '#' ? errc::odd_hex_digits
                                                            : errc::invalid_hex_digit,
                        detail::is_hex_space(c) || c == '#' ? high_pos : pos);
        } else if (c == '#') {
            while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
        } else if (!detail::is_hex_space(c)) {
            return fail(errc::invalid_hex_digit, pos);
        }
        if (c == '\n') {
            ++pos.line;
            pos.column = 1;
        } else {
            ++pos.column;
        }
    }
    if (high >= 0) return fail(errc::odd_hex_digits, high_pos);
    return {};
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
