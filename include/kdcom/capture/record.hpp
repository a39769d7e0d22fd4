// A capture record: the bytes seen on the wire in one direction at one time. Captures hold raw
// bytes, not decoded packets, so that garbage, split writes and resynchronisations replay as they
// happened.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kdcom::capture {

// Which way the bytes went. A capture is always told from the debugger's side of the link.
enum class flow : std::uint8_t {
    debugger_to_target,
    target_to_debugger,
};

// "d2t" or "t2d": the names kdcom-dump --json and packet scripts use.
constexpr std::string_view flow_name(flow f) {
    return f == flow::debugger_to_target ? "d2t" : "t2d";
}

struct record {
    std::uint64_t time_ns = 0;  // nanoseconds since the Unix epoch (UTC)
    flow direction = flow::debugger_to_target;
    std::vector<std::uint8_t> bytes;
};

// What a capture says about itself (the pcapng section header's options).
struct capture_info {
    std::string application;  // the program that wrote it
    std::string debugger;     // the debugger's end of the link, as an address or a description
    std::string target;       // the target's end
};

}  // namespace kdcom::capture
