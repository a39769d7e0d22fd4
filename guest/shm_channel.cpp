// The guest's channel to a shm:// host between processes: the rendezvous socket, the region and
// two eventfds (shm_attachment.hpp). Sleeping polls the guest's doorbell, the socket (the host
// writes nothing more on it: anything there means it closed) and the guest's interrupt eventfd.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "kdcom/guest/kd_guest.h"
#include "kdcom/net/shm_attachment.hpp"
#include "error_text.hpp"

using namespace kdcom;
using kdcom::guest_detail::set_error;

namespace {

struct shm_channel {
    net::shm_detail::unique_fd socket;
    net::shm_detail::unique_fd interrupt;  // an eventfd: readable once kdcom_guest_interrupt() ran
    net::shm_attachment attachment;
};

void ring_host(void* context) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(static_cast<shm_channel*>(context)->attachment.host_doorbell.get(), &one, sizeof one);
}

int sleep(void* context, const char** why) {
    auto& c = *static_cast<shm_channel*>(context);
    pollfd fds[3] = {{c.attachment.guest_doorbell.get(), POLLIN, 0}, {c.socket.get(), POLLIN, 0}, {c.interrupt.get(), POLLIN, 0}};
    for (;;) {
        const int n = ::poll(fds, 3, -1);
        if (n < 0 && errno == EINTR) continue;
        if (fds[2].revents) {
            *why = "interrupted";
            return -1;
        }
        if (n < 0 || fds[1].revents) {
            *why = "the host is gone";
            return -1;
        }
        std::uint64_t count;
        [[maybe_unused]] const auto r = ::read(c.attachment.guest_doorbell.get(), &count, sizeof count);
        return 0;
    }
}

void interrupt(void* context) {
    const std::uint64_t one = 1;  // write(2) is async-signal-safe
    [[maybe_unused]] const auto n = ::write(static_cast<shm_channel*>(context)->interrupt.get(), &one, sizeof one);
}

void release(void* context) { delete static_cast<shm_channel*>(context); }


}  // namespace

extern "C" kdcom_guest* kdcom_guest_attach(const char* name, char* error, size_t error_size) {
    auto c = std::make_unique<shm_channel>();
    const std::string path = net::shm_rendezvous_path(name ? name : "");
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) {
        set_error(error, error_size, "rendezvous path too long: " + path);
        return nullptr;
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    c->interrupt.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!c->interrupt) {
        set_error(error, error_size, std::string("cannot make an eventfd: ") + std::strerror(errno));
        return nullptr;
    }
    c->socket.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!c->socket || ::connect(c->socket.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        set_error(error, error_size, "cannot reach the host at " + path + ": " + std::strerror(errno));
        return nullptr;
    }
    if (auto ec = net::receive_shm_attachment(c->socket.get(), true, c->attachment)) {
        set_error(error, error_size, "the host at " + path + " refused the attachment: " + ec.message());
        return nullptr;
    }
    const auto memory = c->attachment.memory.bytes();
    const kdcom_guest_channel channel{memory.data(), memory.size(), c.release(), ring_host, sleep, interrupt, release, 0, 0};
    return kdcom_guest_open(&channel, error, error_size);
}
