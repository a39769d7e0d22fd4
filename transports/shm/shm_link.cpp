// The rendezvous: the host creates a region and two doorbells per guest and passes them over a
// Unix socket (SCM_RIGHTS); the guest receives and checks them.
#include "kdcom/net/shm_link.hpp"

#include "connection_parts.hpp"
#include "rendezvous_hello.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <asio/post.hpp>

#include "kdcom/error.hpp"
#include "kdcom/net/socket_link.hpp"

namespace kdcom::net {
namespace {

using shm_detail::connection_parts;
using shm_detail::hello_descriptors;
using shm_detail::hello_message;
using shm_detail::last_error;
using shm_detail::map_region;
using shm_detail::mapping;
using shm_detail::unique_fd;

std::string peer_description(const std::string& name, int socket) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0)
        return "shm " + name + " (pid " + std::to_string(cred.pid) + ")";
    return "shm " + name;
}

// Host: a fresh region and doorbells for the guest that just connected, sent over its socket.
std::unique_ptr<byte_stream> host_accept(const std::string& name, const shm_options& options, std::uint32_t generation,
                                         asio::local::stream_protocol::socket socket, std::function<void()> on_close,
                                         std::error_code& ec) {
    shm::region_parameters p = options.region;
    p.generation = generation;
    const std::size_t size = p.region_size();
    // Sealed against shrinking: a guest that truncated the file would make the host's next access
    // to the mapping a SIGBUS.
    unique_fd memory(::memfd_create(("kdcom-shm-" + name).c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!memory || ::ftruncate(memory.get(), static_cast<off_t>(size)) != 0 ||
        ::fcntl(memory.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        ec = last_error();
        return nullptr;
    }
    mapping region = map_region(memory.get(), size, ec);
    if (ec) return nullptr;
    if ((ec = shm::region::initialise(region.bytes(), p))) return nullptr;
    unique_fd host_bell(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    unique_fd guest_bell(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!host_bell || !guest_bell) {
        ec = last_error();
        return nullptr;
    }

    hello_message m;
    m.h.region_size = size;
    cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * hello_descriptors);
    const int fds[hello_descriptors] = {memory.get(), host_bell.get(), guest_bell.get()};
    std::memcpy(CMSG_DATA(c), fds, sizeof fds);
    if (::sendmsg(socket.native_handle(), &m.msg, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof m.h)) {
        ec = last_error();
        return nullptr;
    }

    connection_parts parts;
    parts.executor = socket.get_executor();
    parts.region = region.bytes();
    parts.memory = std::move(region);
    parts.parameters = p;
    parts.side = shm::side::host;
    parts.own_doorbell = std::move(host_bell);
    parts.ring_peer = shm_detail::eventfd_signal(std::move(guest_bell));
    parts.description = peer_description(name, socket.native_handle());
    parts.control.emplace(std::move(socket));
    parts.stall_timeout = options.stall_timeout;
    parts.poll_window = options.poll_window;
    parts.hello_timeout = options.hello_timeout;
    parts.on_close = std::move(on_close);
    return shm_detail::make_connection(std::move(parts));
}

// Guest: the attachment, then a connection over it.
std::unique_ptr<byte_stream> guest_attach(const std::string& name, const shm_options& options,
                                          asio::local::stream_protocol::socket& socket, std::error_code& ec) {
    shm_attachment a;
    if ((ec = receive_shm_attachment(socket.native_handle(), false, a))) return nullptr;
    connection_parts parts;
    parts.executor = socket.get_executor();
    parts.region = a.memory.bytes();
    parts.memory = std::move(a.memory);
    parts.parameters = a.parameters;
    parts.side = shm::side::guest;
    parts.own_doorbell = std::move(a.guest_doorbell);
    parts.ring_peer = shm_detail::eventfd_signal(std::move(a.host_doorbell));
    parts.description = "shm " + name + " (host)";
    parts.control.emplace(std::move(socket));
    parts.stall_timeout = options.stall_timeout;
    parts.poll_window = options.poll_window;
    return shm_detail::make_connection(std::move(parts));
}

class guest_link final : public link {
public:
    guest_link(asio::any_io_executor ex, std::string name, shm_options options)
        : executor_(std::move(ex)), name_(std::move(name)), path_(shm_rendezvous_path(name_)), options_(options) {}

    void async_open(stream_handler handler) override {
        auto socket = std::make_shared<asio::local::stream_protocol::socket>(executor_);
        current_ = socket;
        std::error_code path_error;
        const auto endpoint = unix_endpoint(path_, path_error);
        if (!endpoint)
            return asio::post(executor_, [handler = std::move(handler), path_error] { handler(path_error, nullptr); });
        socket->async_connect(
            *endpoint,
            [socket, handler = std::move(handler), name = name_, options = options_](std::error_code ec) mutable {
                if (ec) return handler(ec, nullptr);
                socket->async_wait(asio::socket_base::wait_read, [socket, handler = std::move(handler), name,
                                                                  options](std::error_code wait_ec) {
                    if (wait_ec) return handler(wait_ec, nullptr);
                    std::error_code attach_ec;
                    auto stream = guest_attach(name, options, *socket, attach_ec);
                    handler(attach_ec, std::move(stream));
                });
            });
    }
    void close() override {
        if (auto s = current_.lock()) {
            std::error_code ignored;
            s->close(ignored);
        }
    }
    std::string describe() const override { return "shm " + name_ + " (guest, via " + path_ + ")"; }
    asio::any_io_executor get_executor() const override { return executor_; }

private:
    asio::any_io_executor executor_;
    std::string name_, path_;
    shm_options options_;
    std::weak_ptr<asio::local::stream_protocol::socket> current_;
};

}  // namespace

std::unique_ptr<listener> make_shm_host(const asio::any_io_executor& ex, const std::string& name, const shm_options& options,
                                        std::error_code& ec) {
    if (!options.region.fit(options.region.region_size())) {
        ec = errc::shm_incompatible_region;
        return nullptr;
    }
    auto generation = std::make_shared<std::uint32_t>(0);
    return make_unix_listener(
        ex, shm_rendezvous_path(name), ec,
        [name, options, generation](asio::local::stream_protocol::socket socket, std::function<void()> on_close,
                                    std::error_code& accept_ec) {
            return host_accept(name, options, ++*generation, std::move(socket), std::move(on_close), accept_ec);
        });
}

std::unique_ptr<link> make_shm_guest(const asio::any_io_executor& ex, const std::string& name, const shm_options& options) {
    return std::make_unique<guest_link>(ex, name, options);
}

}  // namespace kdcom::net
