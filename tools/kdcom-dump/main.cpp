// kdcom-dump: decodes a KDCOM byte stream and prints one line per event.
//
//   kdcom-dump [--json] [--format auto|raw|hex] [--max-body N] FILE|-
//
// Exit status: 0 when the input was read (whatever it contained), 2 for unusable arguments or
// unreadable input. Events decoded before an input error are printed before the message.
#include <cstdint>
#include <cstdio>
#include <string>
#include <variant>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "../common/byte_source.hpp"
#include "../common/progress.hpp"
#include "../common/tool_error.hpp"
#include "../common/tool_main.hpp"
#include "kdcom/decode/decoder.hpp"
#include "kdcom/decode/describe.hpp"
#include "kdcom/kd/describe.hpp"
#include "kdcom/text/hex.hpp"

namespace {

using namespace kdcom;
using kdcom::tools::tool_error;

struct dump_options {
    std::string input;
    tools::input_format format = tools::input_format::automatic;
    std::size_t max_body = wire::default_max_body;
    bool json = false;
};

struct totals {
    std::uint64_t data = 0, control = 0, breakins = 0, errors = 0, garbage_bytes = 0;
};

void put_header(nlohmann::ordered_json& j, const wire::packet_header& h) {
    j["type"] = static_cast<unsigned>(h.type);
    j["type_name"] = wire::packet_type_name(h.type);
    j["id"] = h.id;
    j["length"] = h.byte_count;
}

// The --json object for an event, with the documented keys; null for garbage, which JSON output
// leaves to the summary.
nlohmann::ordered_json to_json(const decode::event& e) {
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

void count(totals& t, const decode::event& e) {
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

int run(const dump_options& opt) {
    tools::byte_source source(opt.input, opt.format);
    decode::decoder decoder(decode::options{opt.max_body});
    tools::progress_meter progress("kdcom-dump: decoding", source.size());
    totals t;

    auto drain = [&] {
        while (auto e = decoder.next()) {
            count(t, *e);
            if (opt.json) {
                const auto j = to_json(*e);
                if (!j.is_null()) fmt::print("{}\n", j.dump());
            } else {
                const auto* p = std::get_if<decode::data_packet>(&*e);
                const auto api = p ? kd::message_name(p->header.type, p->body) : std::string_view{};
                fmt::print("{}{}{}\n", decode::describe(*e), api.empty() ? "" : "  ", api);
            }
        }
    };

    std::vector<std::uint8_t> bytes;
    std::string input_error;
    try {
        while (source.read(bytes)) {
            decoder.push(bytes);
            drain();
            progress.update(source.bytes_consumed());
        }
    } catch (const tool_error& e) {
        input_error = e.what();
    }
    decoder.finish();
    drain();
    progress.finish();

    const std::uint64_t total_bytes = decoder.stream_offset();
    const std::string summary = fmt::format(
        "{} bytes; data packets: {}, control packets: {}, break-ins: {}, framing errors: {}, "
        "garbage bytes: {}",
        total_bytes, t.data, t.control, t.breakins, t.errors, t.garbage_bytes);
    // JSON output keeps stdout to event objects; the summary goes to stderr there.
    if (opt.json) fmt::print(stderr, "kdcom-dump: {}\n", summary);
    else fmt::print("summary: {}\n", summary);
    std::fflush(stdout);

    if (!input_error.empty()) throw tool_error(input_error);
    return tools::exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Decode a KDCOM byte stream (Windows kernel debugger serial framing) and print "
                 "one line per packet, break-in, framing error and run of garbage."};
    dump_options opt;
    app.add_option("input", opt.input, "File to decode: raw bytes or hex text; - for stdin")
        ->required();
    app.add_flag("--json", opt.json,
                 "One JSON object per event (keys: offset kind type type_name id length api "
                 "checksum_ok body error); the summary goes to stderr");
    const std::map<std::string, tools::input_format> formats{
        {"auto", tools::input_format::automatic},
        {"raw", tools::input_format::raw},
        {"hex", tools::input_format::hex}};
    app.add_option("--format", opt.format,
                   "Input format: hex text (digits, whitespace, # comments), raw bytes, or auto")
        ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case))
        ->default_str("auto");
    app.add_option("--max-body", opt.max_body, "Largest packet body accepted, in bytes")
        ->check(CLI::Range(std::size_t{0}, kdcom::wire::byte_count_limit))
        ->default_val(kdcom::wire::default_max_body);

    return kdcom::tools::tool_main("kdcom-dump", app, argc, argv, [&] { return run(opt); });
}
