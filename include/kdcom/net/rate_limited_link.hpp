// Makes any link behave like a serial line of a given speed: what a stream writes leaves at no more
// than `bits_per_second`, counting 10 bits a byte (8N1). For realistic simulations ("this is what
// 115200 bps feels like"); reading is not slowed, the peer's own limiter does that.
#pragma once

#include <algorithm>
#include <chrono>
#include <memory>

#include <asio/steady_timer.hpp>

#include "kdcom/net/byte_stream.hpp"

namespace kdcom::net {

class rate_limited_link final : public link {
public:
    rate_limited_link(std::unique_ptr<link> inner, unsigned bits_per_second)
        : inner_(std::move(inner)), bits_per_second_(bits_per_second) {}

    void async_open(stream_handler handler) override {
        inner_->async_open([this, handler = std::move(handler)](std::error_code ec, std::unique_ptr<byte_stream> s) {
            if (ec) {
                handler(ec, nullptr);
                return;
            }
            handler({}, std::make_unique<stream>(std::move(s), inner_->get_executor(), bits_per_second_));
        });
    }
    void close() override { inner_->close(); }
    std::string describe() const override { return inner_->describe() + " at " + std::to_string(bits_per_second_) + " bps"; }
    asio::any_io_executor get_executor() const override { return inner_->get_executor(); }

private:
    class stream final : public byte_stream {
    public:
        stream(std::unique_ptr<byte_stream> inner, const asio::any_io_executor& ex, unsigned bps)
            : inner_(std::move(inner)), timer_(ex), state_(std::make_shared<pacing>()) {
            // Small chunks keep the pace smooth: about 5 ms of line time each, at least one byte.
            state_->chunk = std::max<std::size_t>(1, bps / 10 / 200);
            state_->byte_time = std::chrono::nanoseconds(10'000'000'000LL / bps);
        }
        ~stream() override { close(); }

        void async_read_some(std::span<std::uint8_t> b, io_handler h) override { inner_->async_read_some(b, std::move(h)); }

        void async_write(std::span<const std::uint8_t> bytes, io_handler h) override {
            write_chunk(bytes, 0, std::move(h));
        }
        void close() override {
            state_->closed = true;
            timer_.cancel();
            inner_->close();
        }
        std::string describe() const override { return inner_->describe(); }

    private:
        struct pacing {
            std::size_t chunk = 1;
            std::chrono::nanoseconds byte_time{};
            std::chrono::steady_clock::time_point line_free{};
            bool closed = false;
        };

        // Writes bytes[done..] one chunk at a time, each when the line would have sent the last.
        void write_chunk(std::span<const std::uint8_t> bytes, std::size_t done, io_handler h) {
            if (done == bytes.size()) {
                h({}, bytes.size());
                return;
            }
            const auto now = std::chrono::steady_clock::now();
            state_->line_free = std::max(state_->line_free, now);
            const std::size_t n = std::min(state_->chunk, bytes.size() - done);
            timer_.expires_at(state_->line_free);
            state_->line_free += state_->byte_time * static_cast<long>(n);
            auto state = state_;
            timer_.async_wait([this, state, bytes, done, n, h = std::move(h)](std::error_code ec) mutable {
                if (ec || state->closed) {
                    h(ec ? ec : asio::error::operation_aborted, done);
                    return;
                }
                inner_->async_write(bytes.subspan(done, n), [this, state, bytes, done, n, h = std::move(h)](std::error_code e, std::size_t) mutable {
                    if (e || state->closed) {
                        h(e ? e : asio::error::operation_aborted, done);
                        return;
                    }
                    write_chunk(bytes, done + n, std::move(h));
                });
            });
        }

        std::unique_ptr<byte_stream> inner_;
        asio::steady_timer timer_;
        std::shared_ptr<pacing> state_;
    };

    std::unique_ptr<link> inner_;
    unsigned bits_per_second_;
};

}  // namespace kdcom::net
