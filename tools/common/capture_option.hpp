// The --capture option the tools share: open the file with a message a user understands, and
// say at the end what it holds (or that it stopped early, which is an error).
#pragma once

#include <memory>
#include <string>

#include <fmt/format.h>

#include "kdcom/capture/capture_file.hpp"
#include "tool_error.hpp"

namespace kdcom::tools {

inline std::shared_ptr<capture::capture_file> open_capture(const std::string& path, const capture::capture_info& info) {
    std::error_code ec;
    auto file = capture::capture_file::create(path, info, ec);
    if (!file) throw tool_error(fmt::format("cannot write the capture {}: {}", path, ec.message()));
    return file;
}

// "capture: N records, M bytes in PATH"; throws if a write failed (the capture is incomplete).
inline std::string finish_capture(const capture::capture_file& file) {
    if (const auto ec = file.error())
        throw tool_error(fmt::format("the capture {} stopped early: {}", file.path(), ec.message()));
    return fmt::format("capture: {} records, {} bytes in {}", file.records(), file.bytes(), file.path());
}

}  // namespace kdcom::tools
