// Stream sockets as KDCOM links: TCP (client and listener) and Unix-domain sockets (client and
// listener; what VMware, VirtualBox and QEMU create for a guest serial port).
//
// Listeners accept one peer at a time: a second peer that connects while one is attached is
// refused at once (its connection is closed), so it cannot corrupt the session in progress.
// TCP sockets get TCP_NODELAY; a TCP listener binds 127.0.0.1 unless told otherwise (by the
// address); a Unix listener creates its socket file with mode 0600 and replaces a stale one left
// by a dead process, but not one a live listener answers on.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include <asio/any_io_executor.hpp>
#include <asio/local/stream_protocol.hpp>

#include "kdcom/net/byte_stream.hpp"

namespace kdcom::net {

// A listener's extra surface, for tests and tools.
class listener : public link {
public:
    virtual std::uint16_t local_port() const = 0;  // TCP: the bound port (useful after port 0)
    virtual std::size_t refused() const = 0;        // peers turned away while one was attached
};

std::unique_ptr<link> make_tcp_client(const asio::any_io_executor& ex, std::string host, std::uint16_t port);
std::unique_ptr<listener> make_tcp_listener(const asio::any_io_executor& ex, const std::string& host,
                                            std::uint16_t port, std::error_code& ec);

// The socket file a Unix listener made, removed when the listener closes, but only if it is
// still the one it made: another instance may have removed it and bound its own at the path.
struct owned_socket_file {
    std::string path;
    std::uint64_t device = 0, inode = 0;

    // The socket file now at `path` (just bound); empty if there is none.
    static owned_socket_file made_at(const std::string& path);
    void remove_if_still_ours();
};

#if !defined(_WIN32)  // Unix-domain sockets: POSIX only here
std::unique_ptr<link> make_unix_client(const asio::any_io_executor& ex, std::string path);

// Turns an accepted Unix socket into the stream a listener hands out; `on_close` must run when
// that stream closes (the listener refuses other peers until then). On failure, returns null and
// sets the error (the listener passes it to async_open's handler).
using unix_stream_factory = std::function<std::unique_ptr<byte_stream>(asio::local::stream_protocol::socket,
                                                                       std::function<void()> on_close, std::error_code&)>;
// `factory` defaults to handing out the socket itself as the byte stream.
std::unique_ptr<listener> make_unix_listener(const asio::any_io_executor& ex, const std::string& path,
                                             std::error_code& ec, unix_stream_factory factory = {});

// Binds and listens on a Unix-domain socket at `path` as every kdcom listener does: mode 0600, a
// stale socket file replaced, one a live listener answers on left alone (address_in_use), any
// other file left alone (file_exists).
asio::local::stream_protocol::acceptor bind_unix_acceptor(const asio::any_io_executor& ex, const std::string& path,
                                                          std::error_code& ec);

// The endpoint of the socket file at `path`, or nothing with `ec` set to filename_too_long when
// the path is longer than a socket address holds (about 107 bytes; Asio would throw).
std::optional<asio::local::stream_protocol::endpoint> unix_endpoint(const std::string& path, std::error_code& ec);
#endif

}  // namespace kdcom::net
