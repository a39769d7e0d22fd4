// Prints decoded KDCOM events the way kdcom-dump does, as text lines or JSON objects, and counts
// them; for captures and live traffic, each line starts with the time and the direction.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <variant>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "kdcom/capture/record.hpp"
#include "kdcom/decode/decoder.hpp"
#include "kdcom/decode/describe.hpp"
#include "kdcom/kd/describe.hpp"
#include "kdcom/text/hex.hpp"

namespace kdcom::tools {

struct totals {
    std::uint64_t data = 0, control = 0, breakins = 0, errors = 0, garbage_bytes = 0;
};

inline void put_header(nlohmann::ordered_json& j, const wire::packet_header& h) {
    j["type"] = static_cast<unsigned>(h.type);
    j["type_name"] = wire::packet_type_name(h.type);
    j["id"] = h.id;
    j["length"] = h.byte_count;
}

// The --json object for an event, with the documented keys; null for garbage, which JSON output
// leaves to the summary.
inline nlohmann::ordered_json to_json(const decode::event& e) {
    nlohmann::ordered_json j;
    j["offset"] = decode::offset_of(e);
    std::visit(
        [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, decode::data_packet>) {
                j["kind"] = "data";
                put_header(j, v.header);
                if (const auto api = kd::message_name(v.header.type, v.body); !api.empty()) j["api"] = api;
                j["checksum_ok"] = true;
                j["body"] = text::to_hex(v.body);
            } else if constexpr (std::is_same_v<T, decode::control_packet>) {
                j["kind"] = "control";
                put_header(j, v.header);
            } else if constexpr (std::is_same_v<T, decode::breakin>) {
                j["kind"] = "breakin";
            } else if constexpr (std::is_same_v<T, decode::framing_error>) {
                j["kind"] = "error";
                if (v.has_header) put_header(j, v.header);
                if (v.has_body) {
                    j["checksum_ok"] = v.body_checksum == v.header.checksum;
                    j["body"] = text::to_hex(v.body);
                }
                j["error"] = v.error.message();
            } else {
                j = nullptr;
            }
        },
        e);
    return j;
}

inline void count(totals& t, const decode::event& e) {
    std::visit(
        [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, decode::data_packet>) ++t.data;
            else if constexpr (std::is_same_v<T, decode::control_packet>) ++t.control;
            else if constexpr (std::is_same_v<T, decode::breakin>) ++t.breakins;
            else if constexpr (std::is_same_v<T, decode::framing_error>) ++t.errors;
            else t.garbage_bytes += v.length;
        },
        e);
}

// Where an event was seen in a capture: when (seconds after the first record) and which way.
struct capture_context {
    double seconds = 0;
    capture::flow direction{};
};

// Prints events as --json or as text lines, and counts them.
class event_printer {
public:
    // `tool` names the program in the JSON summary line on stderr.
    event_printer(const char* tool, bool json) : tool_(tool), json_(json) {}

    void print(const decode::event& e, const capture_context* where = nullptr) {
        count(totals_, e);
        if (json_) {
            auto j = to_json(e);
            if (j.is_null()) return;
            if (where) {
                nlohmann::ordered_json with_time;
                with_time["time"] = where->seconds;
                with_time["dir"] = capture::flow_name(where->direction);
                with_time.update(j);
                j = std::move(with_time);
            }
            fmt::print("{}\n", j.dump());
            return;
        }
        const auto* p = std::get_if<decode::data_packet>(&e);
        const auto api = p ? kd::message_name(p->header.type, p->body) : std::string_view{};
        if (where) fmt::print("{:>14.9f} {} ", where->seconds, capture::flow_name(where->direction));
        fmt::print("{}{}{}\n", decode::describe(e), api.empty() ? "" : "  ", api);
    }

    // Prints everything `d` has decoded.
    void drain(decode::decoder& d, const capture_context* where = nullptr) {
        while (auto e = d.next()) print(*e, where);
    }

    void summary(std::uint64_t total_bytes, const std::string& prefix) const {
        const std::string text = fmt::format(
            "{}{} bytes; data packets: {}, control packets: {}, break-ins: {}, framing errors: {}, "
            "garbage bytes: {}",
            prefix, total_bytes, totals_.data, totals_.control, totals_.breakins, totals_.errors,
            totals_.garbage_bytes);
        // JSON output keeps stdout to event objects; the summary goes to stderr there.
        if (json_) fmt::print(stderr, "{}: {}\n", tool_, text);
        else fmt::print("summary: {}\n", text);
        std::fflush(stdout);
    }

private:
    const char* tool_;
    bool json_;
    totals totals_;
};

}  // namespace kdcom::tools
