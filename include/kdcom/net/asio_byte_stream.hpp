// A byte_stream over any Asio stream object that reads and writes one descriptor (a socket, a
// serial port, a POSIX descriptor). `on_close` runs once when the stream closes (a listener uses
// it to learn that its peer is gone).
#pragma once

#include <functional>
#include <string>
#include <utility>

#include <asio/write.hpp>

#include "kdcom/net/byte_stream.hpp"

namespace kdcom::net {

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
};

}  // namespace kdcom::net
