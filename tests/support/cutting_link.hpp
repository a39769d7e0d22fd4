// A link wrapper that can cut the connection in the middle of a packet, as a peer that vanishes
// does. Portable (used by the POSIX and the Windows transport tests).
#pragma once

#include <atomic>
#include <memory>

#include <asio/error.hpp>

#include "kdcom/net/byte_stream.hpp"

namespace kdcom::test {

// Wraps a link; `cut_after_bytes` makes its next stream write only part of the write that crosses
// that many bytes, then fail, as a peer that vanishes mid-packet does.
class cutting_link final : public net::link {
public:
    explicit cutting_link(std::unique_ptr<net::link> inner) : inner_(std::move(inner)) {}

    std::shared_ptr<std::atomic<long>> cut_after_bytes = std::make_shared<std::atomic<long>>(-1);
    std::shared_ptr<std::atomic<int>> cuts = std::make_shared<std::atomic<int>>(0);

    void async_open(stream_handler handler) override {
        inner_->async_open([this, handler = std::move(handler)](std::error_code ec, std::unique_ptr<net::byte_stream> s) {
            if (ec) {
                handler(ec, nullptr);
                return;
            }
            handler({}, std::make_unique<stream>(std::move(s), cut_after_bytes, cuts));
        });
    }
    void close() override { inner_->close(); }
    std::string describe() const override { return inner_->describe(); }
    asio::any_io_executor get_executor() const override { return inner_->get_executor(); }

private:
    class stream final : public net::byte_stream {
    public:
        stream(std::unique_ptr<net::byte_stream> inner, std::shared_ptr<std::atomic<long>> cut,
               std::shared_ptr<std::atomic<int>> cuts)
            : inner_(std::move(inner)), cut_(std::move(cut)), cuts_(std::move(cuts)) {}
        void async_read_some(std::span<std::uint8_t> b, io_handler h) override { inner_->async_read_some(b, std::move(h)); }
        void async_write(std::span<const std::uint8_t> b, io_handler h) override {
            const long limit = cut_->load();
            if (limit >= 0 && written_ + static_cast<long>(b.size()) > limit && b.size() > 1) {
                cut_->store(-1);
                ++*cuts_;
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
        void close() override { inner_->close(); }
        std::string describe() const override { return inner_->describe(); }

    private:
        std::unique_ptr<net::byte_stream> inner_;
        std::shared_ptr<std::atomic<long>> cut_;
        std::shared_ptr<std::atomic<int>> cuts_;
        long written_ = 0;
    };

    std::unique_ptr<net::link> inner_;
};

}  // namespace kdcom::test
