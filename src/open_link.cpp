#include "kdcom/net/open_link.hpp"

#include "kdcom/net/rate_limited_link.hpp"
#include "kdcom/net/serial_link.hpp"
#include "kdcom/net/socket_link.hpp"
#if defined(_WIN32)
#include "kdcom/net/windows_pipe_link.hpp"
#else
#include "kdcom/net/fifo_link.hpp"
#include "kdcom/net/ivshmem_link.hpp"
#include "kdcom/net/shm_link.hpp"
#endif

namespace kdcom::net {

namespace {

std::unique_ptr<link> open_plain_link(const asio::any_io_executor& ex, const transport::address& a, [[maybe_unused]] role side,
                                      failure& why, transport::address& reachable_at) {
    using transport::transport_errc;
    why = {};
    using transport::address_kind;
    std::error_code ec;
    std::unique_ptr<link> l;
    switch (a.kind) {
    case address_kind::tcp_connect: return make_tcp_client(ex, a.host, a.port);
    case address_kind::tcp_listen:
        if (auto t = make_tcp_listener(ex, a.host, a.port, ec)) {
            reachable_at.port = t->local_port();
            l = std::move(t);
        }
        break;
    case address_kind::serial: return make_serial_link(ex, a.path, a.serial);
#if defined(_WIN32)
    case address_kind::windows_pipe_connect: return make_pipe_client(ex, a.path);
    case address_kind::windows_pipe_listen: l = make_pipe_listener(ex, a.path, ec); break;
    case address_kind::unix_connect:
    case address_kind::unix_listen:
    case address_kind::fifo:
    case address_kind::shared_memory:
    case address_kind::ivshmem:
        why = {transport_errc::not_on_this_platform, a.to_string() + " is not available on Windows (use pipe:, tcp: or serial:)"};
        return nullptr;
#else
    case address_kind::unix_connect: return make_unix_client(ex, a.path);
    case address_kind::unix_listen: l = make_unix_listener(ex, a.path, ec); break;
    case address_kind::fifo: return make_fifo_link(ex, a.path, side);
    case address_kind::windows_pipe_connect:
    case address_kind::windows_pipe_listen:
        why = {transport_errc::not_on_this_platform,
               "Windows named pipes are only available on Windows (on POSIX, VMs expose a guest serial port "
               "as a Unix socket: use unix:// or unix-listen://)"};
        return nullptr;
    case address_kind::shared_memory: {
        shm_options options;
        if (a.shm_ring_size) options.region.ring_size = a.shm_ring_size;
        if (a.shm_guest) return make_shm_guest(ex, a.path, options);
        l = make_shm_host(ex, a.path, options, ec);
        if (!l) {
            why = {transport_errc::cannot_listen, "cannot listen on " + a.to_string() + " (rendezvous socket " +
                                                      shm_rendezvous_path(a.path) + "): " + ec.message()};
            return nullptr;
        }
        break;
    }
    case address_kind::ivshmem: {
        shm_options options;
        if (a.shm_ring_size) options.region.ring_size = a.shm_ring_size;
        l = a.ivshmem_plain ? make_ivshmem_plain(ex, a.path, options, ec) : make_ivshmem_server(ex, a.path, options, ec);
        break;  // a failure is reported below
    }
#endif
    }
    if (!l) why = {transport_errc::cannot_listen, "cannot listen on " + a.to_string() + ": " + ec.message()};
    return l;
}

}  // namespace

std::unique_ptr<link> open_link(const asio::any_io_executor& ex, const transport::address& a, role side,
                                failure& why, transport::address* reachable_at) {
    transport::address reachable = a;
    auto l = open_plain_link(ex, a, side, why, reachable);
    if (reachable_at) *reachable_at = reachable;
    if (l && a.line_rate > 0) return std::make_unique<rate_limited_link>(std::move(l), a.line_rate);
    return l;
}

endpoint_config config_for(const transport::address& a, endpoint_config base) {
    if (a.send_resets) base.send_resets = *a.send_resets;
    return base;
}

}  // namespace kdcom::net
