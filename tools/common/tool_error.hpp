// The one exception the tools throw: a message for the user, and the exit status it deserves.
// Only tools use exceptions; the library reports errors as std::error_code.
#pragma once

#include <stdexcept>
#include <string>

namespace kdcom::tools {

// Exit statuses shared by every kdcom tool.
inline constexpr int exit_ok = 0;
inline constexpr int exit_mismatch = 1;  // the tool ran, and what it checked did not hold
inline constexpr int exit_usage = 2;     // unusable arguments or unreadable input

struct tool_error : std::runtime_error {
    explicit tool_error(const std::string& message, int exit_status = exit_usage)
        : std::runtime_error(message), status(exit_status) {}
    int status;
};

}  // namespace kdcom::tools
