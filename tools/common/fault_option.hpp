// The --faults option the tools share: "loss=P,corrupt=P,dup=P,garbage=P", each a probability per
// write from 0 to 0.5 (kdcom/net/faulty_link.hpp says what each does).
#pragma once

#include <algorithm>
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
        const std::string key = item.substr(0, eq);
        double value = 0;
        try {
            value = std::stod(item.substr(eq + 1));
        } catch (const std::exception&) {
            throw tool_error("--faults: '" + item.substr(eq + 1) + "' is not a number");
        }
        if (value < 0 || value > 0.5) throw tool_error("--faults: " + key + " must be between 0 and 0.5");
        if (key == "loss") f.loss = value;
        else if (key == "corrupt") f.corrupt = value;
        else if (key == "dup") f.duplicate = value;
        else if (key == "garbage") f.garbage = value;
        else throw tool_error("--faults: unknown fault '" + key + "' (known: loss, corrupt, dup, garbage)");
        start = end + 1;
    }
    return f;
}

}  // namespace kdcom::tools
