// Reads the pcapng capture a tool was given, record by record, for kdcom-dump and kdcom-replay.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "byte_source.hpp"
#include "kdcom/capture/pcapng_reader.hpp"
#include "tool_error.hpp"

namespace kdcom::tools {

struct capture_reading {
    std::uint64_t records = 0;
    capture::capture_info info;  // the (last) section header's
    std::string error;           // why reading stopped early, for the user; empty if it did not
};

// Hands every record of the capture `source` holds (its first chunk already read into `bytes`)
// to on_record(record, number from 1), in order, and calls on_chunk() after each chunk read.
// A torn or corrupt capture, or an input error, ends the reading after every record before it
// was handed over; the result says why, and the caller decides when to report it.
template <class OnRecord, class OnChunk>
capture_reading read_capture_records(byte_source& source, std::vector<std::uint8_t>& bytes, OnRecord on_record,
                                     OnChunk on_chunk) {
    capture::pcapng::reader reader;
    capture_reading result;
    auto take = [&] {
        while (auto r = reader.next()) on_record(std::move(*r), ++result.records);
    };
    try {
        do {
            reader.push(bytes);
            take();
            on_chunk();
        } while (!reader.failed() && source.read(bytes));
    } catch (const tool_error& e) {
        result.error = e.what();
    }
    reader.finish();
    take();
    if (result.error.empty() && reader.failed())
        result.error = source.name() + ": " + reader.error().message() + " " + reader.error_detail();
    result.info = reader.info();
    return result;
}

}  // namespace kdcom::tools
