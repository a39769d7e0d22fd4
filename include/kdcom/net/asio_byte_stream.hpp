// A byte_stream over any Asio stream object that reads and writes one descriptor (a socket, a
// serial port, a POSIX descriptor). `on_close` runs once when the stream closes (a listener uses
// it to learn that its peer is gone).
#pragma once

#include <functional>
#include <span>
#include <system_error>
#include <string>
#include <utility>

#include <asio/write.hpp>

#include "kdcom/net/byte_stream.hpp"

namespace kdcom::net {
namespace detail {

// byte_stream::write_now for an Asio stream object: one non-blocking write_some, what Asio's
// async_write would try first anyway. Sockets and descriptors (on POSIX) are put in non-blocking
// mode on first use (`made_non_blocking` remembers it; it concerns synchronous calls only, Asio's
// asynchronous operations are unaffected). A serial port or a Windows handle cannot be: 0.
template <class AsyncStream>
std::size_t write_at_once(AsyncStream& stream, bool& made_non_blocking, std::span<const std::uint8_t> bytes) {
#if !defined(_WIN32)
    if constexpr (requires(AsyncStream& s, std::error_code& e) { s.non_blocking(true, e); }) {
        std::error_code ec;
        if (!made_non_blocking) {
            stream.non_blocking(true, ec);
            if (ec) return 0;
            made_non_blocking = true;
        }
        const std::size_t n = stream.write_some(asio::buffer(bytes.data(), bytes.size()), ec);
        return ec ? 0 : n;
    }
#endif
    (void)stream, (void)made_non_blocking, (void)bytes;
    return 0;
}

}  // namespace detail

template <class AsyncStream>
class asio_byte_stream final : public byte_stream {
public:
    asio_byte_stream(AsyncStream stream, std::string description, std::function<void()> on_close = {})
        : stream_(std::move(stream)), description_(std::move(description)), on_close_(std::move(on_close)) {}
    ~asio_byte_stream() override { close(); }

    void async_read_some(std::span<std::uint8_t> buffer, io_handler handler) override {
        stream_.async_read_some(asio::buffer(buffer.data(), buffer.size()), std::move(handler));
    }
    void async_write(std::span<const std::uint8_t> bytes, io_handler handler) override {
        asio::async_write(stream_, asio::buffer(bytes.data(), bytes.size()), std::move(handler));
    }
    std::size_t write_now(std::span<const std::uint8_t> bytes) override {
        return detail::write_at_once(stream_, non_blocking_, bytes);
    }
    void close() override {
        std::error_code ignored;
        stream_.close(ignored);
        if (auto f = std::exchange(on_close_, nullptr)) f();
    }
    std::string describe() const override { return description_; }

private:
    AsyncStream stream_;
    std::string description_;
    std::function<void()> on_close_;
    bool non_blocking_ = false;
};

}  // namespace kdcom::net
