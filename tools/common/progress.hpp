// A progress line on stderr for long work, shown only when stderr is a terminal so that logs and
// pipes stay clean. Redrawn at most ten times a second.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include <unistd.h>

namespace kdcom::tools {

class progress_meter {
public:
    // `total` is the amount of work in bytes, or 0 if unknown.
    progress_meter(std::string label, std::uint64_t total)
        : label_(std::move(label)), total_(total), enabled_(::isatty(STDERR_FILENO) == 1) {}
    progress_meter(const progress_meter&) = delete;
    progress_meter& operator=(const progress_meter&) = delete;
    ~progress_meter() { finish(); }

    void update(std::uint64_t done) {
        if (!enabled_) return;
        const auto now = std::chrono::steady_clock::now();
        if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
        last_draw_ = now;
        drawn_ = true;
        const double mib = static_cast<double>(done) / (1024.0 * 1024.0);
        if (total_ > 0) {
            const double fraction = static_cast<double>(done) / static_cast<double>(total_);
            const int width = 30;
            const int filled = static_cast<int>(fraction * width);
            std::fprintf(stderr, "\r%s [%-*s] %5.1f%%  %.1f MiB", label_.c_str(), width,
                         std::string(static_cast<std::size_t>(filled), '#').c_str(),
                         fraction * 100.0, mib);
        } else {
            std::fprintf(stderr, "\r%s %.1f MiB", label_.c_str(), mib);
        }
        std::fflush(stderr);
    }

    // Clears the line; called by the destructor too.
    void finish() {
        if (!drawn_) return;
        std::fprintf(stderr, "\r\033[K");
        std::fflush(stderr);
        drawn_ = false;
    }

private:
    std::string label_;
    std::uint64_t total_;
    bool enabled_;
    bool drawn_ = false;
    std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace kdcom::tools
