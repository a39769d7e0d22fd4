// A pcapng capture being written to a file, record by record, so that whatever happens to the
// process afterwards, every record written so far can be read back (kdcom/capture/pcapng_reader.hpp
// reports a record torn by a crash and returns everything before it).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "kdcom/capture/record.hpp"
#include "kdcom/endpoint/config.hpp"
#include "kdcom/net/session.hpp"

namespace kdcom::capture {

// What create() does when `path` is an existing regular file.
enum class existing_file { refuse, overwrite };

class capture_file {
public:
    // Creates `path` (mode 0600: a capture holds guest memory) and writes the capture's header.
    // An existing regular file is refused (`ec` is file_exists) unless `existing` says overwrite;
    // a symbolic link is never followed; an existing FIFO or device is written to (a FIFO only
    // if someone reads it: a live Wireshark). Returns nullptr with `ec` set when the file cannot
    // be created or written.
    static std::unique_ptr<capture_file> create(const std::string& path, const capture_info& info, std::error_code& ec,
                                                existing_file existing = existing_file::refuse);
    ~capture_file();
    capture_file(const capture_file&) = delete;
    capture_file& operator=(const capture_file&) = delete;

    // Appends the bytes as one record (or several, for more than pcapng::max_record_bytes: the
    // bytes are a stream, so nothing is lost by splitting), and flushes them to the operating
    // system before returning. Safe to call from several threads. After a write error (a full
    // disk) the capture stops growing and error() says why; the caller's traffic is never held up.
    void write(std::uint64_t time_ns, flow direction, std::span<const std::uint8_t> bytes);

    // The same, for a time taken from std::chrono::steady_clock (what sessions' taps report).
    void write_steady(timestamp steady_time, flow direction, std::span<const std::uint8_t> bytes) {
        write(wall_time(steady_time), direction, bytes);
    }

    std::uint64_t wall_time(timestamp steady_time) const {
        return static_cast<std::uint64_t>((steady_time - steady_origin_).count() + wall_origin_ns_);
    }
    static std::uint64_t now_ns() {
        return static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count());
    }

    std::error_code error() const;
    std::uint64_t records() const;
    std::uint64_t bytes() const;  // of traffic captured, not of the file
    const std::string& path() const { return path_; }

private:
    capture_file(std::string path, std::FILE* file);
    std::error_code put(const std::vector<std::uint8_t>& block);

    std::string path_;
    std::FILE* file_;
    std::int64_t wall_origin_ns_;
    timestamp steady_origin_;
    mutable std::mutex mutex_;
    std::vector<std::uint8_t> scratch_;
    std::error_code error_;
    std::uint64_t records_ = 0, bytes_ = 0;
};

// A session tap that records into `file`. `session_role` tells the directions apart: a debugger's
// writes go to the target, a target's to the debugger.
net::tap_function capture_tap(std::shared_ptr<capture_file> file, role session_role);

}  // namespace kdcom::capture
