// Timestamped notices ("guest attached", "debugger gone") with a bound on how fast they are
// printed: a peer can provoke them at will (a guest attaching and being dropped tens of thousands of
// times a second, a client reconnecting in a loop), and a log it could fill without limit would be
// a way to fill the disk. At most `per_second` notices are printed in each second; the rest are
// counted, and the count is printed before the next notice shown and at the end.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string_view>

#include <fmt/chrono.h>
#include <fmt/core.h>

namespace kdcom::tools {

class notice_log {
public:
    // `out`: stdout or stderr, flushed after each line.
    explicit notice_log(std::FILE* out, unsigned per_second = 20) : out_(out), per_second_(per_second) {}
    notice_log(const notice_log&) = delete;
    notice_log& operator=(const notice_log&) = delete;
    ~notice_log() { finish(); }

    void print(std::string_view text) {
        const auto now = std::chrono::steady_clock::now();
        if (now - window_start_ >= std::chrono::seconds(1)) {
            window_start_ = now;
            shown_in_window_ = 0;
        }
        if (shown_in_window_ >= per_second_) {
            ++held_back_;
            return;
        }
        ++shown_in_window_;
        finish();
        line(text);
    }

    // A line of the tool's own (started, stopping, a summary): printed whatever the rate, after
    // the count of any held back.
    void print_always(std::string_view text) {
        finish();
        line(text);
    }

    // Prints how many notices were held back, if any.
    void finish() {
        if (held_back_ == 0) return;
        const auto n = held_back_;
        held_back_ = 0;
        line(fmt::format("({} more notice{} not shown: over {} a second)", n, n == 1 ? "" : "s", per_second_));
    }

    std::uint64_t held_back() const { return held_back_; }

private:
    void line(std::string_view text) {
        fmt::print(out_, "{:%H:%M:%S} {}\n", fmt::localtime(std::time(nullptr)), text);
        std::fflush(out_);
    }

    std::FILE* out_;
    unsigned per_second_;
    std::chrono::steady_clock::time_point window_start_{};
    unsigned shown_in_window_ = 0;
    std::uint64_t held_back_ = 0;
};

}  // namespace kdcom::tools
