// libFuzzer target for kdcom-replay's packet scripts (JSON Lines, tools/kdcom-replay/script.hpp):
// each line of the input goes through the line parser.
//
// Invariants checked:
// - never a crash, and never an exception but tool_error, whose message starts with the line's
//   place;
// - a packet accepted has a data packet type and a body within the packet limit;
// - a packet accepted survives a round trip: written back as a script line and parsed again, it is
//   the same packet.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "../tools/kdcom-replay/script.hpp"

namespace {
using namespace kdcom;

[[noreturn]] void fail(const char* what, const std::string& detail) {
    std::fprintf(stderr, "replay script invariant violated: %s: %s\n", what, detail.c_str());
    std::abort();
}

void check_line(std::string_view line) {
    const std::string where = "script:1";
    std::optional<tools::script_packet> p;
    try {
        p = tools::detail::parse_script_text(line, where);
    } catch (const tools::tool_error& e) {
        if (std::string_view(e.what()).substr(0, where.size() + 2) != where + ": ") fail("an error without its place", e.what());
        return;
    }
    if (!p) return;
    if (!wire::is_data_type(p->type)) fail("a packet of a type that is not data", std::to_string(static_cast<unsigned>(p->type)));
    if (p->body.size() > wire::default_max_body) fail("a body over the limit", std::to_string(p->body.size()));
    const std::string again = std::string("{\"dir\":\"") +
                              (p->direction == capture::flow::debugger_to_target ? "d2t" : "t2d") + "\",\"type\":" +
                              std::to_string(static_cast<unsigned>(p->type)) + ",\"body\":\"" + text::to_hex(p->body) + "\"}";
    const auto q = tools::detail::parse_script_text(again, where);
    if (!q || q->direction != p->direction || q->type != p->type || q->body != p->body) fail("no round trip", again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t nl = text.find('\n', start);
        check_line(text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
        if (nl == std::string_view::npos) break;
        start = nl + 1;
    }
    return 0;
}
