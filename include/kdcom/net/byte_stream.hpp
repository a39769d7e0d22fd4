// What every transport provides to a session: a connected, ordered byte stream, and a link that
// produces one (by connecting, or by accepting the next peer). Asio lives here and below, never in
// the protocol core.
//
// Contracts: all operations are started and complete on the stream's executor; at most one read
// and one write are outstanding at a time; close() cancels them (their handlers run with
// asio::error::operation_aborted) and is idempotent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <system_error>

#include <asio/any_io_executor.hpp>

namespace kdcom::net {

class byte_stream {
public:
    using io_handler = std::function<void(std::error_code, std::size_t)>;

    virtual ~byte_stream() = default;

    // Reads at least one byte into `buffer` (which must stay valid until the handler runs).
    virtual void async_read_some(std::span<std::uint8_t> buffer, io_handler handler) = 0;
    // Writes all of `bytes` (which must stay valid until the handler runs).
    virtual void async_write(std::span<const std::uint8_t> bytes, io_handler handler) = 0;
    // Writes what the stream can take at once, without waiting and with no handler to run later,
    // and returns how many bytes it took: 0 when none fit now, when the stream failed (the next
    // async_write reports why), or when it cannot write this way (the default). Not while an
    // async_write is outstanding. A session tries it first and saves, when all is taken, the
    // completion that async_write would post to the event loop.
    virtual std::size_t write_now(std::span<const std::uint8_t> bytes) {
        (void)bytes;
        return 0;
    }
    virtual void close() = 0;
    // Who is on the other end, for messages ("tcp 127.0.0.1:50000").
    virtual std::string describe() const = 0;
};

// Produces streams: a client connects (again, after a disconnect, if asked to reconnect); a
// listener accepts the next peer.
class link {
public:
    using stream_handler = std::function<void(std::error_code, std::unique_ptr<byte_stream>)>;

    virtual ~link() = default;
    virtual void async_open(stream_handler handler) = 0;
    virtual void close() = 0;
    virtual std::string describe() const = 0;
    virtual asio::any_io_executor get_executor() const = 0;
};

}  // namespace kdcom::net
