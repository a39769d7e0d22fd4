// Two links joined in memory, in one process: what one end writes, the other reads. For replays
// and simulations that want the protocol without an operating-system object in the way.
//
// Contracts: both ends run on the one executor given; handlers are always posted, never run
// inside the call that starts the operation. Each link opens once; after either end closes, the
// other reads end-of-file and its writes fail with broken_pipe, and opening again fails with
// not_connected. Memory is bounded by what the reader has not yet taken (a session reads all the
// time, so at most what the peer wrote since).
#pragma once

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <utility>

#include <asio/error.hpp>
#include <asio/post.hpp>

#include "kdcom/net/byte_stream.hpp"

namespace kdcom::net {

namespace detail {

// The shared state of the two ends: the bytes travelling each way and the read waiting on each.
struct memory_pipe {
    explicit memory_pipe(asio::any_io_executor ex) : executor(std::move(ex)) {}
    asio::any_io_executor executor;
    std::deque<std::uint8_t> to[2];  // to[i]: bytes end i has yet to read
    struct pending_read {
        std::span<std::uint8_t> buffer;
        byte_stream::io_handler handler;
    };
    std::optional<pending_read> waiting[2];
    bool closed = false;

    // Completes end i's waiting read if it can.
    void serve(int i) {
        if (!waiting[i]) return;
        if (to[i].empty() && !closed) return;
        auto r = std::move(*waiting[i]);
        waiting[i].reset();
        if (to[i].empty()) {
            asio::post(executor, [h = std::move(r.handler)] { h(asio::error::eof, 0); });
            return;
        }
        const std::size_t n = std::min(r.buffer.size(), to[i].size());
        std::copy_n(to[i].begin(), n, r.buffer.begin());
        to[i].erase(to[i].begin(), to[i].begin() + static_cast<std::ptrdiff_t>(n));
        asio::post(executor, [h = std::move(r.handler), n] { h({}, n); });
    }
};

class memory_stream final : public byte_stream {
public:
    memory_stream(std::shared_ptr<memory_pipe> pipe, int end) : pipe_(std::move(pipe)), end_(end) {}
    ~memory_stream() override { close(); }

    void async_read_some(std::span<std::uint8_t> buffer, io_handler handler) override {
        if (closed_here_) {
            asio::post(pipe_->executor, [h = std::move(handler)] { h(asio::error::operation_aborted, 0); });
            return;
        }
        pipe_->waiting[end_] = memory_pipe::pending_read{buffer, std::move(handler)};
        pipe_->serve(end_);
    }
    void async_write(std::span<const std::uint8_t> bytes, io_handler handler) override {
        if (pipe_->closed) {
            asio::post(pipe_->executor, [h = std::move(handler)] { h(asio::error::broken_pipe, 0); });
            return;
        }
        auto& queue = pipe_->to[1 - end_];
        queue.insert(queue.end(), bytes.begin(), bytes.end());
        pipe_->serve(1 - end_);
        asio::post(pipe_->executor, [h = std::move(handler), n = bytes.size()] { h({}, n); });
    }
    void close() override {
        if (closed_here_) return;
        closed_here_ = true;
        pipe_->closed = true;
        if (auto& mine = pipe_->waiting[end_]) {
            asio::post(pipe_->executor, [h = std::move(mine->handler)] { h(asio::error::operation_aborted, 0); });
            mine.reset();
        }
        pipe_->serve(1 - end_);  // the other end reads what is left, then end-of-file
    }
    std::string describe() const override { return end_ == 0 ? "memory (first end)" : "memory (second end)"; }

private:
    std::shared_ptr<memory_pipe> pipe_;
    int end_;
    bool closed_here_ = false;
};

class memory_link final : public link {
public:
    memory_link(std::shared_ptr<memory_pipe> pipe, int end) : pipe_(std::move(pipe)), end_(end) {}
    void async_open(stream_handler handler) override {
        if (opened_ || pipe_->closed) {
            asio::post(pipe_->executor, [h = std::move(handler)] { h(asio::error::not_connected, nullptr); });
            return;
        }
        opened_ = true;
        asio::post(pipe_->executor, [h = std::move(handler), s = std::make_shared<std::unique_ptr<byte_stream>>(
                                                                 std::make_unique<memory_stream>(pipe_, end_))] {
            h({}, std::move(*s));
        });
    }
    void close() override {}
    std::string describe() const override { return "memory"; }
    asio::any_io_executor get_executor() const override { return pipe_->executor; }

private:
    std::shared_ptr<memory_pipe> pipe_;
    int end_;
    bool opened_ = false;
};

}  // namespace detail

// The two ends of one in-memory connection.
inline std::pair<std::unique_ptr<link>, std::unique_ptr<link>> make_memory_links(const asio::any_io_executor& ex) {
    auto pipe = std::make_shared<detail::memory_pipe>(ex);
    return {std::make_unique<detail::memory_link>(pipe, 0), std::make_unique<detail::memory_link>(pipe, 1)};
}

}  // namespace kdcom::net
