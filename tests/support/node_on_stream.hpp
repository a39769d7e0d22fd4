// Runs a sim::node (kdcom's own side or a model of another program) over a real byte stream in real
// time: what the stream delivers goes to receive(), the node's deadline() sets a timer, and what it
// writes goes out in order. For tests that put a peer model in front of a real program (the bridge,
// a tool) instead of in the virtual-time simulator.
//
// Contract: everything runs on the stream's executor; the runner must outlive nothing it started
// (close() it, then let the io_context run once more, before it is destroyed).
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <vector>

#include <asio/steady_timer.hpp>

#include "kdcom/net/byte_stream.hpp"
#include "kdcom/sim/node.hpp"

namespace kdcom::test {

class node_on_stream : public std::enable_shared_from_this<node_on_stream> {
public:
    node_on_stream(asio::any_io_executor executor, std::unique_ptr<net::byte_stream> stream, sim::node& node)
        : stream_(std::move(stream)), node_(node), timer_(executor), started_(std::chrono::steady_clock::now()) {}

    void start() {
        node_.start(now());
        after_call();
        read();
    }

    void close() {
        closed_ = true;
        timer_.cancel();
        stream_->close();
    }

    bool failed() const noexcept { return failed_; }

private:
    timestamp now() const { return std::chrono::duration_cast<timestamp>(std::chrono::steady_clock::now() - started_); }

    void read() {
        stream_->async_read_some(buffer_, [self = shared_from_this()](std::error_code ec, std::size_t n) {
            if (self->closed_) return;
            if (ec) {
                self->failed_ = true;
                return;
            }
            self->node_.receive(std::span(self->buffer_).first(n), self->now());
            self->after_call();
            self->read();
        });
    }

    // Sends what the node wrote and sets the timer for its next deadline.
    void after_call() {
        for (auto& w : node_.take_writes()) outbox_.push_back(std::move(w));
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
        if (writing_ || outbox_.empty() || closed_) return;
        writing_ = true;
        stream_->async_write(outbox_.front(), [self = shared_from_this()](std::error_code ec, std::size_t) {
            self->writing_ = false;
            if (self->closed_) return;
            if (ec) {
                self->failed_ = true;
                return;
            }
            self->outbox_.pop_front();
            self->write_next();
        });
    }

    std::unique_ptr<net::byte_stream> stream_;
    sim::node& node_;
    asio::steady_timer timer_;
    std::chrono::steady_clock::time_point started_;
    std::vector<std::uint8_t> buffer_ = std::vector<std::uint8_t>(8192);
    std::deque<std::vector<std::uint8_t>> outbox_;
    bool writing_ = false, closed_ = false, failed_ = false;
};

}  // namespace kdcom::test
