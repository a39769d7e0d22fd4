// What kdcom-replay plays: the data packets of a pcapng capture (its conversation: each packet
// once, in order) or of a packet script, told apart by content.
//
// A packet script is JSON Lines, one packet per line:
//   {"dir":"d2t","type":2,"body":"3146..."}
// dir: "d2t" (debugger to target) or "t2d"; type: a data packet type; body: hex (may be empty).
// Other keys are ignored. Blank lines are skipped, and so are lines with "control":true and lines
// whose "kind" is not "data": kdcom-dump --json output is a script as it stands.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../common/byte_source.hpp"
#include "../common/capture_reading.hpp"
#include "../common/tool_error.hpp"
#include "kdcom/capture/conversation.hpp"
#include "kdcom/text/hex.hpp"
#include "kdcom/wire/constants.hpp"

namespace kdcom::tools {

struct script_packet {
    capture::flow direction{};
    wire::packet_type type{};
    std::vector<std::uint8_t> body;
    std::string origin;  // where it came from, for messages: "FILE:LINE" or "FILE, record N"
};

struct replay_script {
    std::string kind;  // "capture" or "packet script"
    std::vector<script_packet> packets;
    std::uint64_t folded = 0;  // retransmissions in a capture, played once
    std::string damage;        // a torn or corrupt capture: why reading stopped (its packets before are here)
};

namespace detail {

inline void read_capture_script(byte_source& source, std::vector<std::uint8_t>& bytes, replay_script& out) {
    capture::conversation talk;
    const auto reading = read_capture_records(
        source, bytes,
        [&](const capture::record& r, std::uint64_t number) {
            talk.push(r);
            while (auto p = talk.next())
                out.packets.push_back({p->direction, p->type, std::move(p->body),
                                       source.name() + ", record " + std::to_string(number)});
        },
        [] {});
    // A capture cut short (its writer killed) or damaged further on: the whole records before the
    // damage are a conversation still worth replaying; the caller says what was left out.
    if (!reading.error.empty()) {
        if (reading.records == 0) throw tool_error(reading.error);
        out.damage = reading.error;
    }
    talk.finish();
    while (auto p = talk.next()) out.packets.push_back({p->direction, p->type, std::move(p->body), source.name()});
    out.folded = talk.retransmissions_folded();
}

// One line's object, already parsed.
inline script_packet parse_script_line(const nlohmann::json& j, const std::string& where) {
    script_packet p;
    p.origin = where;
    const auto dir = j.find("dir");
    if (dir == j.end() || !dir->is_string() || (*dir != "d2t" && *dir != "t2d"))
        throw tool_error(where + ": \"dir\" must be \"d2t\" or \"t2d\"");
    p.direction = *dir == "d2t" ? capture::flow::debugger_to_target : capture::flow::target_to_debugger;
    const auto type = j.find("type");
    if (type == j.end() || !type->is_number_unsigned() || *type > 0xFFFF ||
        !wire::is_data_type(static_cast<wire::packet_type>(type->get<unsigned>())))
        throw tool_error(where + ": \"type\" must be the number of a data packet type (1, 2, 3, 7, 9, 10 or 11)");
    p.type = static_cast<wire::packet_type>(type->get<unsigned>());
    const auto body = j.find("body");
    if (body == j.end() || !body->is_string()) throw tool_error(where + ": \"body\" must be a hex string");
    if (const auto ec = text::parse_hex(body->get<std::string>(), p.body))
        throw tool_error(where + ": \"body\": " + ec.message());
    if (p.body.size() > wire::default_max_body)
        throw tool_error(where + ": a body of " + std::to_string(p.body.size()) + " bytes, over the " +
                         std::to_string(wire::default_max_body) + "-byte packet limit");
    return p;
}

inline void read_packet_script(byte_source& source, std::vector<std::uint8_t>& bytes, replay_script& out) {
    std::string pending;
    std::size_t line_number = 0;
    auto take_line = [&](const std::string& line) {
        ++line_number;
        if (line.find_first_not_of(" \t\r") == std::string::npos) return;
        const std::string where = source.name() + ":" + std::to_string(line_number);
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) throw tool_error(where + ": not a JSON object");
        if (const auto c = j.find("control"); c != j.end() && *c == true) return;
        if (const auto k = j.find("kind"); k != j.end() && *k != "data") return;
        out.packets.push_back(parse_script_line(j, where));
    };
    do {
        pending.append(bytes.begin(), bytes.end());
        std::size_t start = 0;
        for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
            take_line(pending.substr(start, nl - start));
        pending.erase(0, start);
        if (pending.size() > (1u << 20)) throw tool_error(source.name() + ": a line longer than 1 MiB");
    } while (source.read(bytes));
    if (!pending.empty()) take_line(pending);
}

}  // namespace detail

// Reads FILE ("-": standard input). Throws tool_error (exit status 2) for anything unusable,
// naming the file, the line or record, and what is wrong.
inline replay_script load_script(const std::string& path) {
    byte_source source(path, input_format::automatic);
    std::vector<std::uint8_t> bytes;
    replay_script out;
    if (!source.read(bytes)) throw tool_error(source.name() + ": empty: neither a capture nor a packet script");
    if (source.format() == input_format::pcapng) {
        out.kind = "capture";
        detail::read_capture_script(source, bytes, out);
    } else if (const auto first = std::find_if(bytes.begin(), bytes.end(), [](std::uint8_t c) { return !std::isspace(c); });
               source.format() == input_format::raw && first != bytes.end() && *first == '{') {
        out.kind = "packet script";
        detail::read_packet_script(source, bytes, out);
    } else {
        throw tool_error(source.name() + ": neither a pcapng capture nor a packet script (JSON Lines)");
    }
    if (out.packets.empty()) throw tool_error(source.name() + ": holds no data packets to replay");
    return out;
}

}  // namespace kdcom::tools
