// A debugger session and a target session joined by a real OS object of a chosen kind (TCP or
// Unix socket, FIFO pair, pseudo-terminal as a serial line), on one io_context, plus a link
// wrapper that can cut the connection in the middle of a packet.
#pragma once

#include <fcntl.h>
#include <pty.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/write.hpp>

#include "kdcom/net/asio_byte_stream.hpp"
#include "kdcom/net/fifo_link.hpp"
#include "kdcom/net/serial_link.hpp"
#include "kdcom/net/session.hpp"
#include "kdcom/net/shm_link.hpp"
#include "kdcom/net/socket_link.hpp"
#include "support/cutting_link.hpp"
#include "support/decode_helpers.hpp"

namespace kdcom::test {

enum class transport_kind { tcp, unix_socket, fifo, serial_pty, shm };

inline std::string to_string(transport_kind k) {
    switch (k) {
    case transport_kind::tcp: return "tcp";
    case transport_kind::unix_socket: return "unix";
    case transport_kind::fifo: return "fifo";
    case transport_kind::serial_pty: return "serial";
    case transport_kind::shm: return "shm";
    }
    return "?";
}

// A scratch directory for socket files and FIFOs, removed afterwards.
struct scratch_dir {
    scratch_dir() {
        char pattern[] = "/tmp/kdcom-test-XXXXXX";
        path = ::mkdtemp(pattern);
    }
    ~scratch_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    std::string path;
};

// A shared-memory name no other test process uses at the same time.
inline std::string unique_shm_name() {
    static int counter = 0;
    return "test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

// A link over a descriptor we already hold (the master side of a pseudo-terminal).
class descriptor_link final : public net::link {
public:
    descriptor_link(asio::any_io_executor ex, int fd) : executor_(std::move(ex)), fd_(fd) {}
    void async_open(stream_handler handler) override {
        handler({}, std::make_unique<net::asio_byte_stream<asio::posix::stream_descriptor>>(
                        asio::posix::stream_descriptor(executor_, ::dup(fd_)), "pty master"));
    }
    void close() override {}
    std::string describe() const override { return "pty master"; }
    asio::any_io_executor get_executor() const override { return executor_; }

private:
    asio::any_io_executor executor_;
    int fd_;
};

// The two ends of a link of a chosen kind: the target's (a listener where the kind has one) and
// the debugger's. Owns what the kind needs (the pty master) for as long as it lives.
struct link_pair {
    std::unique_ptr<net::link> target, debugger;
    net::listener* listener = nullptr;  // the target's, for socket and shm kinds
    int pty_master = -1;

    link_pair(asio::io_context& io, transport_kind kind, const std::string& dir) {
        std::error_code ec;
        switch (kind) {
        case transport_kind::tcp: {
            auto l = net::make_tcp_listener(io.get_executor(), "127.0.0.1", 0, ec);
            if (l) debugger = net::make_tcp_client(io.get_executor(), "127.0.0.1", l->local_port());
            listener = l.get();
            target = std::move(l);
            break;
        }
        case transport_kind::unix_socket: {
            auto l = net::make_unix_listener(io.get_executor(), dir + "/kd.sock", ec);
            listener = l.get();
            debugger = net::make_unix_client(io.get_executor(), dir + "/kd.sock");
            target = std::move(l);
            break;
        }
        case transport_kind::fifo:
            target = net::make_fifo_link(io.get_executor(), dir + "/serial", role::target);
            debugger = net::make_fifo_link(io.get_executor(), dir + "/serial", role::debugger);
            break;
        case transport_kind::shm: {  // the target is the host side, as in the VMM bridge
            const std::string name = unique_shm_name();
            auto l = net::make_shm_host(io.get_executor(), name, {}, ec);
            listener = l.get();
            debugger = net::make_shm_guest(io.get_executor(), name);
            target = std::move(l);
            break;
        }
        case transport_kind::serial_pty: {
            int slave = -1;
            char name[256] = {};
            if (::openpty(&pty_master, &slave, name, nullptr, nullptr) != 0) throw std::runtime_error("openpty failed");
            ::close(slave);  // the serial link opens it by name
            target = net::make_serial_link(io.get_executor(), name, {});
            debugger = std::make_unique<descriptor_link>(io.get_executor(), pty_master);
            // A pty master must not translate or echo: make it raw.
            termios tio{};
            ::tcgetattr(pty_master, &tio);
            ::cfmakeraw(&tio);
            ::tcsetattr(pty_master, TCSANOW, &tio);
            break;
        }
        }
        if (ec) throw std::system_error(ec);
    }
    link_pair(const link_pair&) = delete;
    link_pair& operator=(const link_pair&) = delete;
    ~link_pair() {
        if (pty_master >= 0) ::close(pty_master);
    }
};

struct session_pair {
    asio::io_context io;
    scratch_dir dir;
    std::unique_ptr<link_pair> links;  // outlives the sessions (it holds the pty master)
    std::shared_ptr<net::session> debugger, target;
    net::listener* listener = nullptr;  // the target's, for socket kinds
    cutting_link* debugger_link = nullptr;

    session_pair(transport_kind kind, endpoint_config d, endpoint_config t, net::session_options options = {})
        : links(std::make_unique<link_pair>(io, kind, dir.path)), listener(links->listener) {
        auto cutting = std::make_unique<cutting_link>(std::move(links->debugger));
        debugger_link = cutting.get();
        d.role = role::debugger;
        t.role = role::target;
        target = net::session::create(std::move(links->target), t, options);
        debugger = net::session::create(std::move(cutting), d, options);
        target->start();
        debugger->start();
    }

    ~session_pair() {
        if (debugger) debugger->close();
        if (target) target->close();
        io.run_for(std::chrono::milliseconds(50));
    }
};// A message header as the KD manipulate messages start: its API number, then zeros.
inline bytes manipulate_like(std::uint16_t api) {
    bytes b(0x38, 0);
    b[0] = static_cast<std::uint8_t>(api);
    b[1] = static_cast<std::uint8_t>(api >> 8);
    return b;
}

}  // namespace kdcom::test
