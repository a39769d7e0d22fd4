// SIGINT and SIGTERM for a tool whose waits run on an io_context: the signal is noted, the tool's
// stop action runs on the io_context (to close what the tool waits on), and the tool's waits end
// with a clear message instead of the process dying silently and leaving its socket files behind.
#pragma once

#include <atomic>
#include <csignal>
#include <functional>
#include <string>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

namespace kdcom::tools {

class stop_signals {
public:
    // Listens from now on: construct it before opening anything a signal should close.
    // `sigint`: also SIGINT (not when Ctrl+C means something else, as a break-in at a prompt).
    explicit stop_signals(asio::io_context& io, bool sigint = true) : set_(io, SIGTERM) {
        if (sigint) set_.add(SIGINT);
        set_.async_wait([this](std::error_code ec, int signal) {
            if (ec) return;
            signal_ = signal;
            if (on_stop_) on_stop_();
        });
    }

    // What to do when the signal comes (close the sessions); at once if it came already. Call
    // it where the io_context runs, or before it runs.
    void on_stop(std::function<void()> f) {
        on_stop_ = std::move(f);
        if (signal_ && on_stop_) on_stop_();
    }

    // Stops listening, so that the io_context can run out of work. On the io_context's thread
    // (post it there), before waiting for that thread to end.
    void cancel() { set_.cancel(); }

    // The signal that came, or 0. From any thread.
    int signal() const { return signal_; }
    std::string describe() const { return signal_ == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)"; }

private:
    asio::signal_set set_;
    std::atomic<int> signal_{0};
    std::function<void()> on_stop_;
};

}  // namespace kdcom::tools
