// The ivshmem server: QEMU's side of the handshake on a Unix socket, and one shm_connection per
// generation the guest asks for. ivshmem-plain is the same with the VM attached from the start
// through a memory file, and a periodic timer where the doorbell would be.
#include "kdcom/net/ivshmem_link.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "connection_parts.hpp"
#include "kdcom/shm/generation.hpp"
#include "rendezvous_hello.hpp"

namespace kdcom::net {
namespace {

using shm_detail::last_error;
using shm_detail::map_region;
using shm_detail::mapping;
using shm_detail::unique_fd;
using unix_socket = asio::local::stream_protocol::socket;

// One message of QEMU's ivshmem server protocol: a little-endian int64, with at most one
// descriptor. The socket is new and each message 8 bytes: a short write means it is gone.
std::error_code send_ivshmem_message(int socket, std::int64_t value, int fd = -1) {
    unsigned char bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(value) >> (8 * i));
    iovec iov{bytes, sizeof bytes};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
    if (fd >= 0) {
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do n = ::sendmsg(socket, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0) return last_error();
    return n == sizeof bytes ? std::error_code{} : std::make_error_code(std::errc::broken_pipe);
}

// The size of the memfd for a region of `p`: the next power of two (QEMU refuses other sizes).
std::size_t ivshmem_memory_size(const shm::region_parameters& p) {
    std::size_t size = 4096;
    while (size < p.region_size()) size <<= 1;
    return size;
}

// How often the host looks at an ivshmem-plain region it is not polling already: its doorbell is
// a timer.
constexpr auto plain_look_interval = std::chrono::milliseconds(1);

// A VM attached to the server: its QEMU's socket, the region's memfd, the doorbells.
struct attached_vm {
    std::shared_ptr<unix_socket> socket;  // shared with the wait for its end of file; none for ivshmem-plain
    unique_fd memory_fd;
    mapping memory;  // the server's own view: generation requests
    std::size_t memory_size = 0;
    unique_fd host_bell;   // QEMU writes it when the guest rings peer ivshmem_host_peer (plain: a periodic timerfd)
    unique_fd guest_bell;  // writing it interrupts the guest (MSI-X vector 0); none for ivshmem-plain
    std::optional<asio::posix::stream_descriptor> bell_watch;  // a duplicate of host_bell, read while no stream is out
    std::uint32_t served = 0;  // the generation set up last (0: none yet)
    bool stream_out = false;   // a connection for `served` is handed out and not yet closed
    std::function<void()> end_stream;  // ends that connection (set by make_connection)
    std::uint64_t bell_count = 0;
    bool watching = false;  // bell_watch has a read pending
};

class server final : public listener, public std::enable_shared_from_this<server> {
public:
    // An ivshmem server for QEMUs that connect to `a`.
    server(const asio::any_io_executor& ex, std::string path, shm_options options, asio::local::stream_protocol::acceptor a)
        : executor_(ex), path_(std::move(path)), options_(options), acceptor_(std::move(a)), retry_(ex),
          socket_file_(owned_socket_file::made_at(path_)) {}
    // ivshmem-plain: the memory file at `path`, attached from the start.
    server(const asio::any_io_executor& ex, std::string path, shm_options options)
        : executor_(ex), path_(std::move(path)), options_(options), acceptor_(ex), retry_(ex), plain_(true) {}

    void start() { accept(); }

    // ivshmem-plain: creates or opens the memory file (0600, a power of two in size: QEMU's
    // memory-backend-file must be given the same size) and serves it as an attached VM whose
    // doorbell is a periodic timer.
    std::error_code attach_file() {
        attached_vm vm;
        shm::region_parameters p = options_.region;
        p.generation = 0;
        vm.memory_size = ivshmem_memory_size(p);
        vm.memory_fd.reset(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!vm.memory_fd) return last_error();
        struct stat st {};
        if (::fstat(vm.memory_fd.get(), &st) != 0) return last_error();
        if (!S_ISREG(st.st_mode) || (st.st_size != 0 && static_cast<std::size_t>(st.st_size) != vm.memory_size))
            return errc::shm_incompatible_region;  // not a file of the size this host's region needs
        if (::ftruncate(vm.memory_fd.get(), static_cast<off_t>(vm.memory_size)) != 0) return last_error();
        std::error_code ec;
        vm.memory = map_region(vm.memory_fd.get(), vm.memory_size, ec);
        if (ec || (ec = shm::generation::publish(vm.memory.bytes(), p, ivshmem_host_peer))) return ec;
        vm.host_bell.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(plain_look_interval).count();
        const itimerspec every{{0, static_cast<long>(ns)}, {0, static_cast<long>(ns)}};
        if (!vm.host_bell || ::timerfd_settime(vm.host_bell.get(), 0, &every, nullptr) != 0) return last_error();
        return adopt(std::move(vm), nullptr);
    }

    void async_open(stream_handler handler) override {
        if (closed_) return post_result(std::move(handler), asio::error::operation_aborted);
        pending_ = std::move(handler);
        serve_if_asked();
    }
    void close() override {
        if (closed_) return;
        closed_ = true;
        std::error_code ignored;
        acceptor_.close(ignored);
        retry_.cancel();
        drop_vm();
        socket_file_.remove_if_still_ours();
        if (pending_) post_result(std::exchange(pending_, nullptr), asio::error::operation_aborted);
    }
    std::string describe() const override {
        return (plain_ ? "ivshmem-plain memory file " : "ivshmem server ") + path_;
    }
    asio::any_io_executor get_executor() const override { return executor_; }
    std::uint16_t local_port() const override { return 0; }
    std::size_t refused() const override { return refused_; }

private:
    void post_result(stream_handler h, std::error_code ec) {
        asio::post(executor_, [h = std::move(h), ec] { h(ec, nullptr); });
    }

    void accept() {
        acceptor_.async_accept([self = shared_from_this()](std::error_code ec, unix_socket socket) {
            if (self->closed_ || ec == asio::error::operation_aborted) return;
            if (!ec) {
                if (self->vm_ && self->vm_has_exited()) self->drop_vm();  // its end of file is still on its way
                if (self->vm_) {
                    ++self->refused_;  // one VM at a time: this QEMU stops at start
                    socket.close(ec);
                } else {
                    self->attach(std::move(socket));
                }
                return self->accept();
            }
            // Out of descriptors, say: try again a little later rather than spin on the error.
            self->retry_.expires_after(std::chrono::milliseconds(50));
            self->retry_.async_wait([self](std::error_code wait_ec) {
                if (!wait_ec && !self->closed_) self->accept();
            });
        });
    }

    // A QEMU connected: make its region and doorbells and tell it about them.
    void attach(unix_socket socket) {
        attached_vm vm;
        shm::region_parameters p = options_.region;
        p.generation = 0;
        vm.memory_size = ivshmem_memory_size(p);
        std::error_code ec;
        // Sealed against resizing: a guest's QEMU that truncated the file would make the host's
        // next access a SIGBUS.
        vm.memory_fd.reset(::memfd_create("kdcom-ivshmem", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        if (!vm.memory_fd || ::ftruncate(vm.memory_fd.get(), static_cast<off_t>(vm.memory_size)) != 0 ||
            ::fcntl(vm.memory_fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
            return;  // the socket closes: QEMU stops at start
        vm.memory = map_region(vm.memory_fd.get(), vm.memory_size, ec);
        if (ec || shm::generation::publish(vm.memory.bytes(), p, ivshmem_host_peer)) return;
        vm.host_bell.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        vm.guest_bell.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!vm.host_bell || !vm.guest_bell) return;
        const int s = socket.native_handle();
        // The protocol version, the client's id, the memory, the host's doorbell (as another
        // peer's vector 0), the client's own interrupt (its vector 0).
        if (send_ivshmem_message(s, 0) || send_ivshmem_message(s, ivshmem_guest_peer) ||
            send_ivshmem_message(s, -1, vm.memory_fd.get()) ||
            send_ivshmem_message(s, ivshmem_host_peer, vm.host_bell.get()) ||
            send_ivshmem_message(s, ivshmem_guest_peer, vm.guest_bell.get()))
            return;
        adopt(std::move(vm), std::make_shared<unix_socket>(std::move(socket)));
    }

    // The VM is set up: watch its doorbell, and its QEMU's socket if it has one.
    std::error_code adopt(attached_vm vm, std::shared_ptr<unix_socket> socket) {
        unique_fd watch(::dup(vm.host_bell.get()));
        if (!watch) return last_error();
        vm.bell_watch.emplace(executor_, watch.release());
        vm.socket = std::move(socket);
        vm_.emplace(std::move(vm));
        ++vm_number_;
        if (vm_->socket) watch_for_exit();
        serve_if_asked();
        return {};
    }

    // QEMU never writes to the socket after the handshake: end of file (or anything) means it exited.
    void watch_for_exit() {
        auto socket = vm_->socket;
        socket->async_read_some(asio::buffer(&exit_byte_, 1),
                                [self = shared_from_this(), socket, vm = vm_number_](std::error_code ec, std::size_t) {
                                    if (self->closed_ || !self->vm_ || self->vm_number_ != vm) return;
                                    if (!ec) return self->watch_for_exit();
                                    self->drop_vm();  // the accept loop takes the next QEMU
                                });
    }

    bool vm_has_exited() const {
        pollfd p{vm_->socket->native_handle(), POLLRDHUP, 0};
        return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
    }

    // Forgets the VM first, so that its stream's on_close (which may run inside end_stream)
    // finds no VM to serve again.
    void drop_vm() {
        if (!vm_) return;
        attached_vm vm = std::move(*vm_);
        vm_.reset();
        if (vm.end_stream) vm.end_stream();  // the bridge sees the guest gone
        std::error_code ignored;
        if (vm.socket) vm.socket->close(ignored);
    }

    // Hands out a stream for the generation the guest asked for, if it asked for one not yet
    // served, nothing is out, and async_open waits; otherwise waits for the guest's doorbell.
    void serve_if_asked() {
        if (!vm_ || vm_->stream_out) return;
        auto& vm = *vm_;
        const std::uint32_t asked = shm::generation::requested(vm.memory.bytes());
        if (asked == vm.served || asked == 0) return watch_doorbell();
        if (!pending_) return;  // the request stays in the region until async_open
        shm::region_parameters p = options_.region;
        p.generation = asked;
        std::error_code ec;
        shm_detail::connection_parts parts;
        parts.memory = map_region(vm.memory_fd.get(), vm.memory_size, ec);  // the stream's own view
        if (!ec) ec = shm::generation::publish(parts.memory.bytes(), p, ivshmem_host_peer);
        parts.own_doorbell.reset(::dup(vm.host_bell.get()));
        unique_fd interrupt(vm.guest_bell ? ::dup(vm.guest_bell.get()) : -1);
        if (!ec && (!parts.own_doorbell || (vm.guest_bell && !interrupt))) ec = last_error();
        vm.served = asked;  // even if it failed: the guest must ask again
        if (ec) {
            post_result(std::exchange(pending_, nullptr), ec);
            return;
        }
        parts.executor = executor_;
        parts.region = parts.memory.bytes();
        parts.parameters = p;
        parts.side = shm::side::host;
        // ivshmem-plain has no interrupt: its guest polls.
        parts.ring_peer = interrupt ? shm_detail::eventfd_signal(std::move(interrupt)) : [] {};
        parts.stall_timeout = options_.stall_timeout;
        parts.poll_window = options_.poll_window;
        parts.description = (vm.socket ? "ivshmem guest (VM " + std::to_string(vm_number_) : "ivshmem-plain guest (file " + path_) +
                            ", generation " + std::to_string(asked) + ")";
        parts.peer_restarted = [view = parts.region, asked] { return shm::generation::requested(view) != asked; };
        parts.on_close = [weak = weak_from_this(), vm_number = vm_number_] {
            auto self = weak.lock();
            if (!self || !self->vm_ || self->vm_number_ != vm_number) return;
            self->vm_->stream_out = false;
            self->vm_->end_stream = nullptr;
            self->serve_if_asked();  // the guest may have asked for the next one already
        };
        parts.end_from_outside = &vm.end_stream;
        vm.stream_out = true;
        // From now on the stream alone reads the doorbell: a signal the watch took instead would
        // leave the stream asleep with a message waiting.
        if (vm.watching) vm.bell_watch->cancel();
        auto stream = shm_detail::make_connection(std::move(parts));
        asio::post(executor_, [h = std::exchange(pending_, nullptr), s = std::move(stream)]() mutable { h({}, std::move(s)); });
    }

    // Waits for the guest's doorbell while no stream is out (a stream waits on it itself).
    void watch_doorbell() {
        auto& vm = *vm_;
        if (std::exchange(vm.watching, true)) return;
        vm.bell_watch->async_read_some(asio::buffer(&vm.bell_count, sizeof vm.bell_count),
                                       [self = shared_from_this(), vm_number = vm_number_](std::error_code ec, std::size_t) {
                                           if (self->closed_ || !self->vm_ || self->vm_number_ != vm_number) return;
                                           self->vm_->watching = false;
                                           if (!ec) self->serve_if_asked();
                                       });
    }

    asio::any_io_executor executor_;
    std::string path_;
    shm_options options_;
    asio::local::stream_protocol::acceptor acceptor_;
    asio::steady_timer retry_;
    owned_socket_file socket_file_;
    std::optional<attached_vm> vm_;
    std::uint64_t vm_number_ = 0;  // which VM a callback was started for
    stream_handler pending_;
    std::size_t refused_ = 0;
    bool closed_ = false;
    bool plain_ = false;  // ivshmem-plain: one VM through a memory file, attached from the start
    std::uint8_t exit_byte_ = 0;
};

// The link handed out: closes the shared server when it goes.
class server_link final : public listener {
public:
    explicit server_link(std::shared_ptr<server> s) : server_(std::move(s)) {}
    ~server_link() override { server_->close(); }
    void async_open(stream_handler handler) override { server_->async_open(std::move(handler)); }
    void close() override { server_->close(); }
    std::string describe() const override { return server_->describe(); }
    asio::any_io_executor get_executor() const override { return server_->get_executor(); }
    std::uint16_t local_port() const override { return 0; }
    std::size_t refused() const override { return server_->refused(); }

private:
    std::shared_ptr<server> server_;
};

}  // namespace

std::unique_ptr<listener> make_ivshmem_server(const asio::any_io_executor& ex, const std::string& path,
                                              const shm_options& options, std::error_code& ec) {
    if (!options.region.fit(options.region.region_size())) {
        ec = errc::shm_incompatible_region;
        return nullptr;
    }
    auto acceptor = bind_unix_acceptor(ex, path, ec);
    if (ec) return nullptr;
    auto s = std::make_shared<server>(ex, path, options, std::move(acceptor));
    s->start();
    return std::make_unique<server_link>(std::move(s));
}

std::unique_ptr<listener> make_ivshmem_plain(const asio::any_io_executor& ex, const std::string& path,
                                             const shm_options& options, std::error_code& ec) {
    if (!options.region.fit(options.region.region_size())) {
        ec = errc::shm_incompatible_region;
        return nullptr;
    }
    auto s = std::make_shared<server>(ex, path, options);
    if ((ec = s->attach_file())) return nullptr;
    return std::make_unique<server_link>(std::move(s));
}

}  // namespace kdcom::net
