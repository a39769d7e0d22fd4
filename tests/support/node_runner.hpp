// Runs a sim::node (kdcom's own side or a model of another program) in real time over real byte
// streams: what the stream delivers goes to receive(), the node's deadline() sets a timer, and what
// it writes goes out in order. The node outlives its streams: attach() gives it the next one (a
// debugger that reconnects), and while none is attached its timers still run and what it writes
// is lost, as on a line nobody listens to. For tests and helpers that put a peer model in front
// of a real program (the bridge, a tool).
//
// Contract: everything runs on the executor given; close() it, and let the executor run once
// more, before the node goes.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include <asio/steady_timer.hpp>

#include "kdcom/net/byte_stream.hpp"
#include "kdcom/sim/node.hpp"

namespace kdcom::test {

class node_runner : public std::enable_shared_from_this<node_runner> {
public:
    node_runner(asio::any_io_executor executor, sim::node& node)
        : node_(node), timer_(executor), started_(std::chrono::steady_clock::now()) {}

    // Called when the attached stream ends (the peer left, or the stream failed).
    std::function<void()> on_stream_end;

    void start() {
        node_.start(now());
        after_call();
    }

    // Replaces the stream (the old one is closed) and starts reading from the new one.
    void attach(std::unique_ptr<net::byte_stream> stream) {
        if (stream_) stream_->close();
        stream_ = std::move(stream);
        ++generation_;
        outbox_.clear();
        writing_ = false;
        read();
    }

    void close() {
        closed_ = true;
        timer_.cancel();
        if (stream_) stream_->close();
    }

private:
    timestamp now() const { return std::chrono::duration_cast<timestamp>(std::chrono::steady_clock::now() - started_); }

    void read() {
        stream_->async_read_some(buffer_, [self = shared_from_this(), generation = generation_](std::error_code ec, std::size_t n) {
            if (self->closed_ || generation != self->generation_) return;
            if (ec) return self->stream_ended();
            self->node_.receive(std::span(self->buffer_).first(n), self->now());
            self->after_call();
            self->read();
        });
    }

    void stream_ended() {
        stream_->close();
        stream_.reset();
        ++generation_;
        outbox_.clear();
        writing_ = false;
        if (on_stream_end) on_stream_end();
    }

    // Sends what the node wrote and sets the timer for its next deadline.
    void after_call() {
        for (auto& w : node_.take_writes())
            if (stream_) outbox_.push_back(std::move(w));
        write_next();
        const auto d = node_.deadline();
        if (!d) return;
        timer_.expires_at(started_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(*d));
        timer_.async_wait([self = shared_from_this()](std::error_code ec) {
            if (ec || self->closed_) return;
            if (const auto due = self->node_.deadline(); due && *due <= self->now()) self->node_.on_time(self->now());
            self->after_call();  // and wait for the next deadline (or this one, if the clock woke us early)
        });
    }

    void write_next() {
        if (writing_ || outbox_.empty() || closed_ || !stream_) return;
        writing_ = true;
        stream_->async_write(outbox_.front(), [self = shared_from_this(), generation = generation_](std::error_code ec, std::size_t) {
            if (self->closed_ || generation != self->generation_) return;
            self->writing_ = false;
            if (ec) return self->stream_ended();
            self->outbox_.pop_front();
            self->write_next();
        });
    }

    sim::node& node_;
    asio::steady_timer timer_;
    std::chrono::steady_clock::time_point started_;
    std::unique_ptr<net::byte_stream> stream_;
    std::uint64_t generation_ = 0;
    std::vector<std::uint8_t> buffer_ = std::vector<std::uint8_t>(8192);
    std::deque<std::vector<std::uint8_t>> outbox_;
    bool writing_ = false, closed_ = false;
};

}  // namespace kdcom::test
