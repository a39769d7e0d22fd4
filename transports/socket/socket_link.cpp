// Stream-socket links: one implementation over Asio's protocol types (tcp, local::stream_protocol).
#include "kdcom/net/socket_link.hpp"

#include "kdcom/net/asio_byte_stream.hpp"

#if !defined(_WIN32)
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#endif

#include <optional>
#include <vector>

#include <asio/connect.hpp>
#include <asio/post.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>

namespace kdcom::net {
namespace {

template <class Protocol>
std::unique_ptr<byte_stream> make_socket_stream(typename Protocol::socket socket, std::string description,
                                                std::function<void()> on_close = {}) {
    return std::make_unique<asio_byte_stream<typename Protocol::socket>>(std::move(socket), std::move(description),
                                                                         std::move(on_close));
}

std::string describe_endpoint(const asio::ip::tcp::endpoint& e) {
    const auto a = e.address();
    return "tcp " + (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
}
#if !defined(_WIN32)  // Unix-domain sockets: POSIX only here
std::string describe_endpoint(const asio::local::stream_protocol::endpoint& e) { return "unix " + e.path(); }
void tune(asio::local::stream_protocol::socket&) {}
#endif

void tune(asio::ip::tcp::socket& s) {
    std::error_code ignored;
    s.set_option(asio::ip::tcp::no_delay(true), ignored);
}

}  // namespace

owned_socket_file owned_socket_file::made_at([[maybe_unused]] const std::string& path) {
    owned_socket_file file;
#ifndef _WIN32
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) file = {path, static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
#endif
    return file;  // empty if gone already: nothing of ours to remove
}

void owned_socket_file::remove_if_still_ours() {
    if (path.empty()) return;
#ifndef _WIN32
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == device && st.st_ino == inode)
        ::unlink(path.c_str());
#endif
    path.clear();
}

namespace {

// Accepts peers one at a time. Shared state, so that callbacks outlive a destroyed link safely.
template <class Protocol>
class socket_listener final : public listener {
public:
    using acceptor_type = typename Protocol::acceptor;
    using socket_type = typename Protocol::socket;
    using factory_type = std::function<std::unique_ptr<byte_stream>(socket_type, std::function<void()>, std::error_code&)>;

    // `factory` turns an accepted socket into the stream handed out (by default, the socket itself).
    socket_listener(acceptor_type acceptor, std::string description, owned_socket_file socket_file = {},
                    factory_type factory = {})
        : state_(std::make_shared<state>(std::move(acceptor))), description_(std::move(description)),
          socket_file_(std::move(socket_file)) {
        state_->factory = factory ? std::move(factory) : [](socket_type socket, std::function<void()> on_close, std::error_code&) {
            std::error_code ec;
            const auto peer = socket.remote_endpoint(ec);
            std::string who = ec ? std::string("peer") : describe_endpoint(peer);
            return make_socket_stream<Protocol>(std::move(socket), std::move(who), std::move(on_close));
        };
    }
    ~socket_listener() override { close(); }

    void async_open(stream_handler handler) override {
        auto& s = *state_;
        if (s.waiting) {
            hand_over(s, std::move(*s.waiting), std::move(handler));
            s.waiting.reset();
        } else {
            s.pending = std::move(handler);
        }
        if (!s.accepting) accept_next(state_);
    }
    void close() override {
        std::error_code ignored;
        state_->acceptor.close(ignored);
        if (state_->waiting) state_->waiting->close(ignored);
        // A waiting async_open ends now (and lets go of what its handler holds).
        if (auto h = std::exchange(state_->pending, nullptr))
            asio::post(state_->acceptor.get_executor(), [h = std::move(h)] { h(asio::error::operation_aborted, nullptr); });
        socket_file_.remove_if_still_ours();
    }
    std::string describe() const override { return description_; }
    asio::any_io_executor get_executor() const override { return state_->acceptor.get_executor(); }
    std::uint16_t local_port() const override {
        if constexpr (std::is_same_v<Protocol, asio::ip::tcp>) {
            std::error_code ec;
            return state_->acceptor.local_endpoint(ec).port();
        }
        return 0;
    }
    std::size_t refused() const override { return state_->refused; }

private:
    struct state {
        explicit state(acceptor_type a) : acceptor(std::move(a)) {}
        acceptor_type acceptor;
        bool accepting = false;
        std::shared_ptr<bool> attached = std::make_shared<bool>(false);
        std::optional<socket_type> waiting;  // accepted before anyone asked for it
        stream_handler pending;
        std::size_t refused = 0;
        factory_type factory;
    };

    // While the stream handed out is open, the "attached" mark is set.
    static void hand_over(state& s, socket_type socket, stream_handler handler) {
        tune(socket);
        *s.attached = true;
        std::error_code ec;
        auto stream = s.factory(std::move(socket), [attached = s.attached] { *attached = false; }, ec);
        if (!stream) *s.attached = false;
        handler(ec, std::move(stream));
    }

    static void accept_next(std::shared_ptr<state> sp) {
        sp->accepting = true;
        sp->acceptor.async_accept([sp](std::error_code ec, socket_type socket) {
            auto& s = *sp;
            s.accepting = false;
            if (ec == asio::error::operation_aborted || !s.acceptor.is_open()) return;
            if (!ec) {
                if (*s.attached || s.waiting) {
                    std::error_code ignored;  // one peer at a time: turn this one away
                    socket.close(ignored);
                    ++s.refused;
                } else if (s.pending) {
                    auto handler = std::move(s.pending);
                    s.pending = nullptr;
                    hand_over(s, std::move(socket), std::move(handler));
                } else {
                    s.waiting.emplace(std::move(socket));
                }
            }
            accept_next(sp);  // keep accepting, if only to refuse
        });
    }

    std::shared_ptr<state> state_;
    std::string description_;
    owned_socket_file socket_file_;
};

// Connects (again, each time async_open is called).
template <class Protocol>
class socket_client final : public link {
public:
    using connect_function = std::function<void(typename Protocol::socket&, std::function<void(std::error_code)>)>;

    socket_client(asio::any_io_executor ex, std::string description, connect_function connect)
        : executor_(std::move(ex)), description_(std::move(description)), connect_(std::move(connect)) {}

    void async_open(stream_handler handler) override {
        auto socket = std::make_shared<typename Protocol::socket>(executor_);
        current_ = socket;
        connect_(*socket, [socket, handler = std::move(handler), d = description_](std::error_code ec) {
            if (ec) {
                handler(ec, nullptr);
                return;
            }
            tune(*socket);
            handler({}, make_socket_stream<Protocol>(std::move(*socket), d));
        });
    }
    void close() override {
        if (auto s = current_.lock()) {
            std::error_code ignored;
            s->close(ignored);
        }
    }
    std::string describe() const override { return description_; }
    asio::any_io_executor get_executor() const override { return executor_; }

private:
    asio::any_io_executor executor_;
    std::string description_;
    connect_function connect_;
    std::weak_ptr<typename Protocol::socket> current_;
};

}  // namespace

std::unique_ptr<link> make_tcp_client(const asio::any_io_executor& ex, std::string host, std::uint16_t port) {
    const std::string description = "tcp " + host + ":" + std::to_string(port);
    auto resolver = std::make_shared<asio::ip::tcp::resolver>(ex);
    return std::make_unique<socket_client<asio::ip::tcp>>(
        ex, description,
        [resolver, host = std::move(host), port](asio::ip::tcp::socket& socket, std::function<void(std::error_code)> done) {
            resolver->async_resolve(host, std::to_string(port),
                                    [&socket, done, resolver](std::error_code ec, asio::ip::tcp::resolver::results_type results) {
                                        if (ec) {
                                            done(ec);
                                            return;
                                        }
                                        asio::async_connect(socket, results,
                                                            [done](std::error_code e, const asio::ip::tcp::endpoint&) { done(e); });
                                    });
        });
}

std::unique_ptr<listener> make_tcp_listener(const asio::any_io_executor& ex, const std::string& host,
                                            std::uint16_t port, std::error_code& ec) {
    // A literal address, or a name (localhost) resolved here: the first of its addresses that binds.
    std::vector<asio::ip::tcp::endpoint> candidates;
    if (const auto literal = asio::ip::make_address(host, ec); !ec) {
        candidates.emplace_back(literal, port);
    } else {
        asio::ip::tcp::resolver resolver(ex);
        const auto results = resolver.resolve(host, std::to_string(port),
                                              asio::ip::resolver_base::passive | asio::ip::resolver_base::numeric_service, ec);
        if (ec) return nullptr;
        for (const auto& r : results) candidates.push_back(r.endpoint());
        if (candidates.empty()) ec = asio::error::host_not_found;
    }
    asio::ip::tcp::acceptor acceptor(ex);
    for (const auto& endpoint : candidates) {
        ec.clear();
        std::error_code ignored;
        acceptor.close(ignored);
        acceptor.open(endpoint.protocol(), ec);
        if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) acceptor.bind(endpoint, ec);
        if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
        if (!ec) break;
    }
    if (ec) return nullptr;
    const auto bound = acceptor.local_endpoint(ec);
    if (ec) return nullptr;
    return std::make_unique<socket_listener<asio::ip::tcp>>(std::move(acceptor), "listening on " + describe_endpoint(bound));
}

#if !defined(_WIN32)  // Unix-domain sockets: POSIX only here
std::unique_ptr<link> make_unix_client(const asio::any_io_executor& ex, std::string path) {
    const std::string description = "unix " + path;
    return std::make_unique<socket_client<asio::local::stream_protocol>>(
        ex, description,
        [path = std::move(path)](asio::local::stream_protocol::socket& socket, std::function<void(std::error_code)> done) {
            std::error_code ec;
            const auto endpoint = unix_endpoint(path, ec);
            if (!endpoint) return asio::post(socket.get_executor(), [done = std::move(done), ec] { done(ec); });
            socket.async_connect(*endpoint, std::move(done));
        });
}

std::optional<asio::local::stream_protocol::endpoint> unix_endpoint(const std::string& path, std::error_code& ec) {
    if (path.size() >= sizeof(sockaddr_un::sun_path)) {
        ec = std::make_error_code(std::errc::filename_too_long);
        return std::nullopt;
    }
    return asio::local::stream_protocol::endpoint(path);
}

asio::local::stream_protocol::acceptor bind_unix_acceptor(const asio::any_io_executor& ex, const std::string& path,
                                                          std::error_code& ec) {
    using stream = asio::local::stream_protocol;
    stream::acceptor acceptor(ex);
    const auto endpoint = unix_endpoint(path, ec);
    if (!endpoint) return acceptor;
    // A socket file left by a dead process refuses connections: remove it. One a live listener
    // answers on is somebody's session: leave it and report the address in use.
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            ec = std::make_error_code(std::errc::file_exists);
            return acceptor;
        }
        stream::socket probe(ex);
        std::error_code probe_ec;
        probe.connect(*endpoint, probe_ec);
        if (!probe_ec) {
            ec = std::make_error_code(std::errc::address_in_use);
            return acceptor;
        }
        ::unlink(path.c_str());
    }
    acceptor.open(stream(), ec);
    if (ec) return acceptor;
    // Created with mode 0600: only this user may talk to the kernel debugger.
    const mode_t old_mask = ::umask(0177);
    acceptor.bind(*endpoint, ec);
    ::umask(old_mask);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    return acceptor;
}

std::unique_ptr<listener> make_unix_listener(const asio::any_io_executor& ex, const std::string& path, std::error_code& ec,
                                             unix_stream_factory factory) {
    auto acceptor = bind_unix_acceptor(ex, path, ec);
    if (ec) return nullptr;
    return std::make_unique<socket_listener<asio::local::stream_protocol>>(
        std::move(acceptor), "listening on unix " + path, owned_socket_file::made_at(path), std::move(factory));
}
#endif

}  // namespace kdcom::net
