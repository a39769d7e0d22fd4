// Where kdcom-kd writes: text for people, or one JSON object per line for scripts (--json). The
// target's DbgPrint output and state changes arrive on the session's thread while a command may be
// printing on the console's: one lock keeps lines whole.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

namespace kdcom::tools::kd_console {

class output {
public:
    explicit output(bool json) : json_(json) {}

    bool json() const noexcept { return json_; }

    // Text mode: `text` as it is. JSON mode: `object` on a line of its own.
    void emit(std::string_view text, const nlohmann::ordered_json& object) {
        std::lock_guard lock(mutex_);
        if (json_) fmt::print("{}\n", object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        else fmt::print("{}", text);
        std::fflush(stdout);
    }

    // A message for people on stderr, whatever the mode.
    void complain(std::string_view text) {
        std::lock_guard lock(mutex_);
        fmt::print(stderr, "{}\n", text);
        std::fflush(stderr);
    }

private:
    bool json_;
    std::mutex mutex_;
};

}  // namespace kdcom::tools::kd_console
