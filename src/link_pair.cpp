#include "kdcom/net/link_pair.hpp"

#include <atomic>
#include <filesystem>

#include "kdcom/net/memory_link.hpp"
#include "kdcom/net/socket_link.hpp"

#if !defined(_WIN32)
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <asio/posix/stream_descriptor.hpp>

#include "kdcom/net/asio_byte_stream.hpp"
#include "kdcom/net/fifo_link.hpp"
#include "kdcom/net/serial_link.hpp"
#include "kdcom/net/shm_link.hpp"
#endif

namespace kdcom::net {

namespace {

constexpr std::pair<pair_kind, std::string_view> kind_names[] = {
    {pair_kind::memory, "mem"},     {pair_kind::tcp, "tcp"},         {pair_kind::unix_socket, "unix"},
    {pair_kind::fifo, "fifo"},      {pair_kind::serial_pty, "serial"}, {pair_kind::shm, "shm"},
};

#if !defined(_WIN32)
// The debugger's end of a pseudo-terminal: the master, which the pair owns; each stream is a dup.
class pty_master_link final : public link {
public:
    pty_master_link(asio::any_io_executor ex, int fd) : executor_(std::move(ex)), fd_(fd) {}
    void async_open(stream_handler handler) override {
        std::unique_ptr<byte_stream> s = std::make_unique<asio_byte_stream<asio::posix::stream_descriptor>>(
            asio::posix::stream_descriptor(executor_, ::dup(fd_)), "pty master");
        asio::post(executor_, [h = std::move(handler), s = std::make_shared<std::unique_ptr<byte_stream>>(std::move(s))] {
            h({}, std::move(*s));
        });
    }
    void close() override {}
    std::string describe() const override { return "pty master"; }
    asio::any_io_executor get_executor() const override { return executor_; }

private:
    asio::any_io_executor executor_;
    int fd_;
};

// A name no other pair in any process uses at the same time.
std::string unique_name() {
    static std::atomic<unsigned> counter{0};
    return "pair-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}
#endif

transport::address address_of(transport::address_kind kind, std::string path) {
    transport::address a;
    a.kind = kind;
    a.path = std::move(path);
    return a;
}

}  // namespace

std::string_view pair_kind_name(pair_kind k) {
    for (const auto& [kind, name] : kind_names)
        if (kind == k) return name;
    return "?";
}

std::optional<pair_kind> parse_pair_kind(std::string_view name) {
    for (const auto& [kind, n] : kind_names)
        if (n == name) return kind;
    return std::nullopt;
}

std::unique_ptr<link_pair> link_pair::make(const asio::any_io_executor& ex, pair_kind kind, std::error_code& ec) {
    std::unique_ptr<link_pair> p(new link_pair());
    ec.clear();
    switch (kind) {
    case pair_kind::memory: {
        auto [a, b] = make_memory_links(ex);
        p->target = std::move(a);
        p->debugger = std::move(b);
        return p;
    }
    case pair_kind::tcp: {
        auto l = make_tcp_listener(ex, "127.0.0.1", 0, ec);
        if (!l) return nullptr;
        p->debugger = make_tcp_client(ex, "127.0.0.1", l->local_port());
        p->debugger_address = address_of(transport::address_kind::tcp_connect, "");
        p->debugger_address.host = "127.0.0.1";
        p->debugger_address.port = l->local_port();
        p->target_listener = l.get();
        p->target = std::move(l);
        return p;
    }
    default: break;
    }
#if defined(_WIN32)
    ec = std::make_error_code(std::errc::operation_not_supported);
    return nullptr;
#else
    char pattern[] = "/tmp/kdcom-pair-XXXXXX";
    if (kind != pair_kind::serial_pty && kind != pair_kind::shm) {
        if (!::mkdtemp(pattern)) {
            ec = {errno, std::generic_category()};
            return nullptr;
        }
        p->directory_ = pattern;
    }
    switch (kind) {
    case pair_kind::unix_socket: {
        const std::string path = p->directory_ + "/kd.sock";
        auto l = make_unix_listener(ex, path, ec);
        if (!l) return nullptr;
        p->debugger = make_unix_client(ex, path);
        p->debugger_address = address_of(transport::address_kind::unix_connect, path);
        p->target_listener = l.get();
        p->target = std::move(l);
        break;
    }
    case pair_kind::fifo:
        p->target = make_fifo_link(ex, p->directory_ + "/serial", role::target);
        p->debugger = make_fifo_link(ex, p->directory_ + "/serial", role::debugger);
        p->debugger_address = address_of(transport::address_kind::fifo, p->directory_ + "/serial");
        break;
    case pair_kind::shm: {
        const std::string name = unique_name();
        auto l = make_shm_host(ex, name, {}, ec);
        if (!l) return nullptr;
        p->debugger = make_shm_guest(ex, name);
        p->debugger_address = address_of(transport::address_kind::shared_memory, name);
        p->debugger_address.shm_guest = true;
        p->target_listener = l.get();
        p->target = std::move(l);
        break;
    }
    case pair_kind::serial_pty: {
        int slave = -1;
        char name[256] = {};
        if (::openpty(&p->pty_master_, &slave, name, nullptr, nullptr) != 0) {
            ec = {errno, std::generic_category()};
            return nullptr;
        }
        ::close(slave);  // the serial link opens it by name
        // A pty master must not translate or echo: raw, like the far end of a null-modem cable.
        termios tio{};
        ::tcgetattr(p->pty_master_, &tio);
        ::cfmakeraw(&tio);
        ::tcsetattr(p->pty_master_, TCSANOW, &tio);
        p->target = make_serial_link(ex, name, {});
        p->debugger = std::make_unique<pty_master_link>(ex, p->pty_master_);
        p->debugger_address = address_of(transport::address_kind::serial, name);
        break;
    }
    default: break;
    }
    return p;
#endif
}

link_pair::~link_pair() {
#if !defined(_WIN32)
    if (pty_master_ >= 0) ::close(pty_master_);
#endif
    if (!directory_.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(directory_, ignored);
    }
}

}  // namespace kdcom::net
