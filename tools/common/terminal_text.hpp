// Text from outside the program (a capture's endpoint names, a target's DbgPrint output, a file
// name inside a message) made safe to write to a terminal.
#pragma once

#include <string>
#include <string_view>

namespace kdcom::tools {

enum class line_breaks { escape, keep };

// Every byte that is not printable ASCII comes out as \xNN, and a backslash as \\, so an escape
// sequence (a window title, a cursor move, a colour), a BEL or a NUL reaches the terminal as
// letters that do nothing. `keep` lets newlines and tabs through, for text that is made of lines.
inline std::string printable(std::string_view text, line_breaks breaks = line_breaks::escape) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\\') {
            out += "\\\\";
        } else if ((c >= 0x20 && c < 0x7f) || (breaks == line_breaks::keep && (c == '\n' || c == '\t'))) {
            out += ch;
        } else {
            out += "\\x";
            out += digits[c >> 4];
            out += digits[c & 0xf];
        }
    }
    return out;
}

}  // namespace kdcom::tools
