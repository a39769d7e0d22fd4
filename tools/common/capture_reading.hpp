// Reads the pcapng capture a tool was given, record by record, for kdcom-dump and kdcom-replay.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "byte_source.hpp"
#include "kdcom/capture/pcapng_reader.hpp"
#include "tool_error.hpp"

namespace kdcom::tools {

// The records of the capture a byte_source holds, one at a time, in order: a chunk is read only
// when the records before it have been taken, so memory stays bounded by a chunk and a record.
// A torn or corrupt capture, or an input error, ends the records after every one before it was
// returned; error() then says why, and the caller decides when to report it.
class capture_records {
public:
    // `source` with its first chunk already read into `first`. `source` must outlive this.
    capture_records(byte_source& source, std::span<const std::uint8_t> first) : source_(source) {
        reader_.push(first);
    }

    // The next record, or nothing at the end of the capture or where it stopped being readable.
    std::optional<capture::record> next() {
        while (true) {
            if (auto r = reader_.next()) {
                ++records_;
                return r;
            }
            if (ended_) {
                if (error_.empty() && reader_.failed())
                    error_ = source_.name() + ": " + reader_.error().message() + " " + reader_.error_detail();
                return std::nullopt;
            }
            if (reader_.failed() || !read_chunk()) {
                ended_ = true;
                reader_.finish();  // the last records, or a torn end, come out of the reader now
            }
        }
    }

    std::uint64_t records() const { return records_; }         // returned so far
    const capture::capture_info& info() const { return reader_.info(); }  // the (last) section header's
    const std::string& error() const { return error_; }         // empty unless reading stopped early

private:
    bool read_chunk() {
        try {
            if (!source_.read(chunk_)) return false;
        } catch (const tool_error& e) {
            error_ = e.what();
            return false;
        }
        reader_.push(chunk_);
        return true;
    }

    byte_source& source_;
    capture::pcapng::reader reader_;
    std::vector<std::uint8_t> chunk_;
    std::uint64_t records_ = 0;
    std::string error_;
    bool ended_ = false;
};

}  // namespace kdcom::tools
