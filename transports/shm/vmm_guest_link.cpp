// A VMM's guest region as a link: one connection at a time over the same region, its doorbell an
// eventfd the VMM writes through doorbell().
#include "kdcom/net/vmm_guest_link.hpp"

#include <sys/eventfd.h>

#include <asio/post.hpp>

#include "connection_parts.hpp"

namespace kdcom::net {
namespace {

using shm_detail::unique_fd;

class vmm_link final : public vmm_guest_link {
public:
    vmm_link(asio::any_io_executor ex, std::span<std::uint8_t> region, std::function<void()> interrupt,
             shm_options options, unique_fd doorbell)
        : state_(std::make_shared<state>(std::move(ex), region, std::move(interrupt), options, std::move(doorbell))) {}
    ~vmm_link() override { close(); }

    void async_open(stream_handler handler) override {
        auto& s = *state_;
        if (s.attached) {  // one connection at a time: the next after guest_reset()
            s.pending = std::move(handler);
            return;
        }
        open_now(state_, std::move(handler));
    }
    void close() override {
        state_->closed = true;
        // A waiting async_open ends now (and lets go of what its handler holds).
        if (auto h = std::exchange(state_->pending, nullptr))
            asio::post(state_->executor, [h = std::move(h)] { h(asio::error::operation_aborted, nullptr); });
    }
    std::string describe() const override { return "vmm guest region"; }
    asio::any_io_executor get_executor() const override { return state_->executor; }

    void doorbell() override {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto n = ::write(state_->doorbell.get(), &one, sizeof one);
    }
    void guest_reset() override {
        asio::post(state_->executor, [s = state_] {
            if (s->end_connection) std::exchange(s->end_connection, nullptr)();
        });
    }

private:
    struct state {
        state(asio::any_io_executor ex, std::span<std::uint8_t> r, std::function<void()> i, shm_options o, unique_fd d)
            : executor(std::move(ex)), region(r), interrupt(std::move(i)), options(o), doorbell(std::move(d)) {}
        asio::any_io_executor executor;
        std::span<std::uint8_t> region;
        std::function<void()> interrupt;
        shm_options options;
        unique_fd doorbell;  // the connection waits on a duplicate of it
        bool attached = false, closed = false;
        stream_handler pending;
        std::function<void()> end_connection;
    };

    static void open_now(const std::shared_ptr<state>& sp, stream_handler handler) {
        auto& s = *sp;
        std::error_code ec;
        std::unique_ptr<byte_stream> connection;
        shm_detail::connection_parts parts;
        if (!(ec = shm::region::read_parameters(s.region, parts.parameters))) {
            parts.executor = s.executor;
            parts.region = s.region;
            parts.side = shm::side::host;
            parts.own_doorbell.reset(::dup(s.doorbell.get()));
            parts.ring_peer = s.interrupt;
            parts.stall_timeout = s.options.stall_timeout;
            parts.poll_window = s.options.poll_window;
            parts.description = "vmm guest (region generation " + std::to_string(parts.parameters.generation) + ")";
            parts.on_close = [sp] {
                sp->attached = false;
                sp->end_connection = nullptr;
                if (sp->pending && !sp->closed) open_now(sp, std::exchange(sp->pending, nullptr));
            };
            parts.end_from_outside = &s.end_connection;
            s.attached = true;
            connection = shm_detail::make_connection(std::move(parts));
        }
        asio::post(s.executor, [handler = std::move(handler), ec, c = std::move(connection)]() mutable {
            handler(ec, std::move(c));
        });
    }

    std::shared_ptr<state> state_;
};

}  // namespace

std::unique_ptr<vmm_guest_link> make_vmm_guest_link(const asio::any_io_executor& ex, std::span<std::uint8_t> region,
                                                    std::function<void()> interrupt_guest, const shm_options& options,
                                                    std::error_code& ec) {
    unique_fd doorbell(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!doorbell) {
        ec = {errno, std::generic_category()};
        return nullptr;
    }
    return std::make_unique<vmm_link>(ex, region, std::move(interrupt_guest), options, std::move(doorbell));
}

}  // namespace kdcom::net
