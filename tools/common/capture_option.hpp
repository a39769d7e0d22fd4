// The --capture option the tools share: open the file with a message a user understands, and
// say at the end what it holds (or that it stopped early, which is an error).
#pragma once

#include <memory>
#include <string>

#include <fmt/format.h>

#include "kdcom/capture/capture_file.hpp"
#include "tool_error.hpp"

namespace kdcom::tools {

// `force`: the user's --force, which lets an existing capture be overwritten.
inline std::shared_ptr<capture::capture_file> open_capture(const std::string& path, const capture::capture_info& info,
                                                           bool force) {
    std::error_code ec;
    auto file = capture::capture_file::create(path, info, ec,
                                              force ? capture::existing_file::overwrite : capture::existing_file::refuse);
    if (file) return file;
    std::string why = ec.message();
    if (ec == std::errc::file_exists) why = "it exists already (--force overwrites it)";
    else if (ec == std::errc::too_many_symbolic_link_levels) why = "it is a symbolic link, which a capture never follows";
    else if (ec == std::errc::no_such_device_or_address) why = "it is a FIFO that nobody reads";
    throw tool_error(fmt::format("cannot write the capture {}: {}", path, why));
}

// "capture: N records, M bytes in PATH"; throws if a write failed (the capture is incomplete).
inline std::string finish_capture(const capture::capture_file& file) {
    if (const auto ec = file.error())
        throw tool_error(fmt::format("the capture {} stopped early: {}", file.path(), ec.message()));
    return fmt::format("capture: {} records, {} bytes in {}", file.records(), file.bytes(), file.path());
}

}  // namespace kdcom::tools
