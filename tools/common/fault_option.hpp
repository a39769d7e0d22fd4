// The --faults option the tools share: "loss=P,corrupt=P,dup=P,garbage=P", each a probability per
// write from 0 to 0.5 (kdcom/net/faulty_link.hpp says what each does).
#pragma once

#include <algorithm>
#include <charconv>
#include <string>

#include "kdcom/net/faulty_link.hpp"
#include "tool_error.hpp"

namespace kdcom::tools {

inline net::link_faults parse_faults(const std::string& text, unsigned seed) {
    net::link_faults f;
    f.seed = seed;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = std::min(text.find(',', start), text.size());
        const std::string item = text.substr(start, end - start);
        const std::size_t eq = item.find('=');
        if (eq == std::string::npos) throw tool_error("--faults: '" + item + "' is not KEY=PROBABILITY");
        const std::string key = item.substr(0, eq), number = item.substr(eq + 1);
        double* target = key == "loss"      ? &f.loss
                         : key == "corrupt" ? &f.corrupt
                         : key == "dup"     ? &f.duplicate
                         : key == "garbage" ? &f.garbage
                                            : nullptr;
        if (!target) throw tool_error("--faults: unknown fault '" + key + "' (known: loss, corrupt, dup, garbage)");
        double value = 0;
        const auto [rest, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
        if (ec != std::errc() || rest != number.data() + number.size() || number.empty())
            throw tool_error("--faults: '" + number + "' is not a number");
        // Written so that NaN fails too.
        if (!(value >= 0 && value <= 0.5)) throw tool_error("--faults: " + key + " must be between 0 and 0.5, not " + number);
        *target = value;
        start = end + 1;
    }
    return f;
}

}  // namespace kdcom::tools
