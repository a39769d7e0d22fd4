// kdcom-dump: decodes a KDCOM byte stream and prints one line per event.
//
//   kdcom-dump [--json] [--format auto|raw|hex|pcapng] [--max-body N] FILE|-
//
// A pcapng capture holds both directions: each line then starts with the time (seconds after the
// first record) and the direction (d2t, t2d), and offsets count within that direction's stream.
//
// Exit status: 0 when the input was read (whatever it contained), 2 for unusable arguments or
// unreadable input. Events decoded before an input error are printed before the message.
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "../common/byte_source.hpp"
#include "../common/capture_reading.hpp"
#include "../common/event_printer.hpp"
#include "../common/progress.hpp"
#include "../common/terminal_text.hpp"
#include "../common/tool_error.hpp"
#include "../common/tool_main.hpp"
#include "kdcom/decode/decoder.hpp"

namespace {

using namespace kdcom;
using kdcom::tools::tool_error;

struct dump_options {
    std::string input;
    tools::input_format format = tools::input_format::automatic;
    std::size_t max_body = wire::default_max_body;
    bool json = false;
};

// A pcapng capture: each direction is its own byte stream with its own decoder; events print in
// the order their records were captured.
void dump_capture(tools::byte_source& source, std::vector<std::uint8_t>& bytes, tools::event_printer& printer,
                  tools::progress_meter& progress, const dump_options& opt) {
    decode::decoder to_target(decode::options{opt.max_body}), to_debugger(decode::options{opt.max_body});
    std::optional<std::uint64_t> first_time;
    tools::capture_context where;
    tools::capture_records records(source, bytes);
    while (const auto r = records.next()) {
        if (!first_time) first_time = r->time_ns;
        // Times count from the first record; one stamped earlier (a clock stepped back, a
        // hand-made capture) is shown at 0 rather than as a huge or negative time.
        where.seconds = r->time_ns > *first_time ? static_cast<double>(r->time_ns - *first_time) / 1e9 : 0.0;
        where.direction = r->direction;
        auto& d = r->direction == capture::flow::debugger_to_target ? to_target : to_debugger;
        d.push(r->bytes);
        printer.drain(d, &where);
        progress.update(source.bytes_consumed());
    }
    for (auto* d : {&to_target, &to_debugger}) {
        where.direction = d == &to_target ? capture::flow::debugger_to_target : capture::flow::target_to_debugger;
        d->finish();
        printer.drain(*d, &where);
    }
    progress.finish();
    const auto& info = records.info();
    printer.summary(to_target.stream_offset() + to_debugger.stream_offset(),
                    fmt::format("capture of {} records{}{}; ", records.records(),
                                info.debugger.empty() ? "" : ", debugger " + tools::printable(info.debugger),
                                info.target.empty() ? "" : ", target " + tools::printable(info.target)));
    if (!records.error().empty()) throw tool_error(records.error());
}

int run(const dump_options& opt) {
    tools::byte_source source(opt.input, opt.format);
    tools::progress_meter progress("kdcom-dump: decoding", source.size());
    tools::event_printer printer("kdcom-dump", opt.json);
    std::vector<std::uint8_t> bytes;
    std::string input_error;
    bool more = false;
    try {
        more = source.read(bytes);
    } catch (const tool_error& e) {
        input_error = e.what();
    }
    if (source.format() == tools::input_format::pcapng) {
        dump_capture(source, bytes, printer, progress, opt);
        return tools::exit_ok;
    }

    decode::decoder decoder(decode::options{opt.max_body});
    try {
        while (more) {
            decoder.push(bytes);
            printer.drain(decoder);
            progress.update(source.bytes_consumed());
            more = source.read(bytes);
        }
    } catch (const tool_error& e) {
        input_error = e.what();
    }
    decoder.finish();
    printer.drain(decoder);
    progress.finish();
    printer.summary(decoder.stream_offset(), "");
    if (!input_error.empty()) throw tool_error(input_error);
    return tools::exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Decode a KDCOM byte stream (Windows kernel debugger serial framing) and print "
                 "one line per packet, break-in, framing error and run of garbage."};
    dump_options opt;
    app.add_option("input", opt.input, "File to decode: raw bytes, hex text or a pcapng capture; - for stdin")
        ->required();
    app.add_flag("--json", opt.json,
                 "One JSON object per event (keys: time and dir for captures, then offset kind type "
                 "type_name id length api checksum_ok body error); the summary goes to stderr");
    const std::map<std::string, tools::input_format> formats{
        {"auto", tools::input_format::automatic},
        {"raw", tools::input_format::raw},
        {"hex", tools::input_format::hex},
        {"pcapng", tools::input_format::pcapng}};
    app.add_option("--format", opt.format,
                   "Input format: hex text (digits, whitespace, # comments), raw bytes, a pcapng capture "
                   "(kdcom-proxy, --capture), or auto")
        ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case))
        ->default_str("auto");
    app.add_option("--max-body", opt.max_body, "Largest packet body accepted, in bytes")
        ->check(CLI::Range(std::size_t{0}, kdcom::wire::byte_count_limit))
        ->default_val(kdcom::wire::default_max_body);

    return kdcom::tools::tool_main("kdcom-dump", app, argc, argv, [&] { return run(opt); });
}
