// Numbers and addresses as WinDbg reads and writes them: hexadecimal unless said otherwise
// (0x... hex, 0n... decimal), a backtick anywhere as a separator (fffff800`00001000), and 64-bit
// addresses printed in two halves joined by a backtick.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace kdcom::tools::kd_console {

// The value of `text`, or nullopt if it is not a number that fits in 64 bits.
inline std::optional<std::uint64_t> parse_number(std::string_view text) {
    int base = 16;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        text.remove_prefix(2);
    } else if (text.size() > 2 && text[0] == '0' && (text[1] == 'n' || text[1] == 'N')) {
        base = 10;
        text.remove_prefix(2);
    }
    std::string digits;
    for (char c : text)
        if (c != '`') digits += c;
    if (digits.empty() || digits.size() > 20) return std::nullopt;
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
    if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
    return value;
}

// "fffff800`00001000"; addresses below 4 GiB as "00000000`00001000" too, as WinDbg does on x64.
inline std::string format_address(std::uint64_t a) {
    return fmt::format("{:08x}`{:08x}", static_cast<std::uint32_t>(a >> 32), static_cast<std::uint32_t>(a));
}

}  // namespace kdcom::tools::kd_console
