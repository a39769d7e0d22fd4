// SIGINT and SIGTERM for a tool whose waits run on an io_context: the signal is noted, `on_stop`
// runs on the io_context (to close what the tool waits on), and the tool's waits end with a
// clear message instead of the process dying silently and leaving its socket files behind.
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
    // `sigint`: also SIGINT (not when Ctrl+C means something else, as a break-in at a prompt).
    stop_signals(asio::io_context& io, std::function<void()> on_stop, bool sigint = true) : set_(io, SIGTERM) {
        if (sigint) set_.add(SIGINT);
        set_.async_wait([this, on_stop = std::move(on_stop)](std::error_code ec, int signal) {
            if (ec) return;
            signal_ = signal;
            if (on_stop) on_stop();
        });
    }

    // Stops listening, so that the io_context can run out of work. On the io_context's thread
    // (post it there), before waiting for that thread to end.
    void cancel() const { set_.cancel(); }

    // The signal that came, or 0. From any thread.
    int signal() const { return signal_; }
    std::string describe() const { return signal_ == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)"; }

private:
    mutable asio::signal_set set_;
    std::atomic<int> signal_{0};
};

}  // namespace kdcom::tools
