// A link wrapper that can cut the connection in the middle of a packet, as a peer that vanishes
// does, count the writes made on it, and hold writes back as a peer that stopped reading does.
// Portable (used by the POSIX and the Windows transport tests).
#pragma once

#include <atomic>
#include <memory>
#include <utility>

#include <asio/error.hpp>
#include <asio/post.hpp>

#include "kdcom/net/byte_stream.hpp"

namespace kdcom::test {

// Wraps a link; `cut_after_bytes` makes its next stream write only part of the write that crosses
// that many bytes, then fail, as a peer that vanishes mid-packet does. `writes` counts the
// writes started on its streams. While `hold_writes` is set, writes never complete (until the
// stream closes: then with operation_aborted), as on a connection whose peer stopped reading.
class cutting_link final : public net::link {
public:
    explicit cutting_link(std::unique_ptr<net::link> inner) : inner_(std::move(inner)) {}

    struct controls {
        std::atomic<long> cut_after_bytes{-1};
        std::atomic<int> cuts{0};
        std::atomic<long> writes{0};
        std::atomic<bool> hold_writes{false};
    };
    std::shared_ptr<controls> control = std::make_shared<controls>();

    void async_open(stream_handler handler) override {
        inner_->async_open([this, handler = std::move(handler)](std::error_code ec, std::unique_ptr<net::byte_stream> s) {
            if (ec) {
                handler(ec, nullptr);
                return;
            }
            handler({}, std::make_unique<stream>(std::move(s), control, inner_->get_executor()));
        });
    }
    void close() override { inner_->close(); }
    std::string describe() const override { return inner_->describe(); }
    asio::any_io_executor get_executor() const override { return inner_->get_executor(); }

private:
    class stream final : public net::byte_stream {
    public:
        stream(std::unique_ptr<net::byte_stream> inner, std::shared_ptr<controls> control, asio::any_io_executor ex)
            : inner_(std::move(inner)), control_(std::move(control)), executor_(std::move(ex)) {}
        void async_read_some(std::span<std::uint8_t> b, io_handler h) override { inner_->async_read_some(b, std::move(h)); }
        void async_write(std::span<const std::uint8_t> b, io_handler h) override {
            ++control_->writes;
            if (control_->hold_writes) {
                held_ = std::move(h);
                return;
            }
            const long limit = control_->cut_after_bytes.load();
            if (limit >= 0 && written_ + static_cast<long>(b.size()) > limit && b.size() > 1) {
                control_->cut_after_bytes.store(-1);
                ++control_->cuts;
                // Half of this write goes out; then the connection is gone.
                inner_->async_write(b.first(b.size() / 2), [this, h = std::move(h)](std::error_code, std::size_t) {
                    inner_->close();
                    h(asio::error::connection_reset, 0);
                });
                return;
            }
            written_ += static_cast<long>(b.size());
            inner_->async_write(b, std::move(h));
        }
        void close() override {
            if (held_) asio::post(executor_, [h = std::exchange(held_, nullptr)] { h(asio::error::operation_aborted, 0); });
            inner_->close();
        }
        std::string describe() const override { return inner_->describe(); }

    private:
        std::unique_ptr<net::byte_stream> inner_;
        std::shared_ptr<controls> control_;
        asio::any_io_executor executor_;
        long written_ = 0;
        io_handler held_;  // a write held back by hold_writes
    };

    std::unique_ptr<net::link> inner_;
};

}  // namespace kdcom::test
