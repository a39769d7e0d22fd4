// The guest's side of the shm:// rendezvous, with nothing but POSIX calls: no Asio, so that the
// blocking guest library (kdcom/guest/kd_guest.h) and any guest driver built like it can use it.
#include "kdcom/net/shm_attachment.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "kdcom/error.hpp"
#include "rendezvous_hello.hpp"

namespace kdcom::net {

using shm_detail::hello;
using shm_detail::hello_descriptors;
using shm_detail::hello_message;
using shm_detail::last_error;
using shm_detail::map_region;
using shm_detail::mapping;
using shm_detail::unique_fd;

std::error_code receive_shm_attachment(int socket, bool wait, shm_attachment& out) {
    hello_message m;
    msghdr& msg = m.msg;
    const hello& h = m.h;
    ssize_t n;
    do n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT));
    while (n < 0 && errno == EINTR);
    if (n < 0) return last_error();
    // Take ownership of whatever descriptors arrived before judging the message.
    std::array<unique_fd, hello_descriptors> fds;
    std::size_t received = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (received < fds.size()) fds[received++].reset(fd);
            else ::close(fd);
        }
    }
    if (n == 0) return std::make_error_code(std::errc::connection_refused);  // the host has a guest already
    struct stat st {};
    if (n != sizeof h || (msg.msg_flags & MSG_CTRUNC) || received != hello_descriptors || h.magic != KDCOM_SHM_MAGIC ||
        h.version != KDCOM_SHM_VERSION || ::fstat(fds[0].get(), &st) != 0 ||
        static_cast<std::uint64_t>(st.st_size) < h.region_size || h.region_size > (std::uint64_t{1} << 31))
        return errc::shm_incompatible_region;
    std::error_code ec;
    mapping region = map_region(fds[0].get(), static_cast<std::size_t>(h.region_size), ec);
    if (ec) return ec;
    if ((ec = shm::region::read_parameters(region.bytes(), out.parameters))) return ec;
    // The hello's answer: the host keeps the guest slot only for a guest that says it has mapped
    // the region (a process that connects and says nothing would otherwise hold it for ever).
    const std::uint8_t ready = shm_ready_byte;
    ssize_t sent;
    do sent = ::send(socket, &ready, 1, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent != 1) return last_error();
    out.memory = std::move(region);
    out.host_doorbell = std::move(fds[1]);
    out.guest_doorbell = std::move(fds[2]);
    return {};
}

std::string shm_rendezvous_path(std::string_view name) {
    const char* dir = std::getenv("KDCOM_SHM_DIR");
    return std::string(dir && *dir ? dir : "/tmp") + "/kdcom-shm-" + std::string(name) + ".sock";
}

}  // namespace kdcom::net
