// The shared-memory channel: rings in a mapped region, eventfd doorbells, and a socket that says
// when the peer process is gone. All work happens in pump(), which runs whenever an operation
// starts or the doorbell rings, and moves whatever can move without waiting.
#include "connection_parts.hpp"

#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <vector>

#include <asio/post.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include "kdcom/error.hpp"

namespace kdcom::net::shm_detail {
namespace {

void signal_doorbell(int fd) noexcept {
    const std::uint64_t one = 1;
    // EAGAIN means the counter is saturated: the peer has a wake-up pending anyway.
    [[maybe_unused]] const auto n = ::write(fd, &one, sizeof one);
}

class channel final : public std::enable_shared_from_this<channel> {
public:
    explicit channel(asio::any_io_executor ex, connection_parts parts)
        : executor_(ex), memory_(std::move(parts.memory)), region_(memory_.bytes(), parts.parameters, parts.side),
          doorbell_(ex, parts.own_doorbell.release()), peer_doorbell_(std::move(parts.peer_doorbell)),
          control_(std::move(parts.control)), stall_timer_(ex), stall_timeout_(parts.stall_timeout),
          on_close_(std::move(parts.on_close)), stage_(parts.parameters.max_message) {}

    void start() { watch_control(); }

    void receive_bytes(std::span<std::uint8_t> buffer, byte_stream::io_handler handler) {
        if (buffer.empty()) return complete(std::move(handler), {}, 0);
        rx_.emplace(receive_op{buffer, std::move(handler), nullptr});
        pump();
    }
    void receive_message(std::span<std::uint8_t> buffer, shm_connection::message_handler handler) {
        if (buffer.size() < region_.parameters().max_message) {
            asio::post(executor_, [h = std::move(handler)] { h(std::make_error_code(std::errc::no_buffer_space), 0, 0); });
            return;
        }
        rx_.emplace(receive_op{buffer, nullptr, std::move(handler)});
        pump();
    }
    void send(std::uint16_t kind, std::span<const std::uint8_t> data, bool whole_message, byte_stream::io_handler handler) {
        if (whole_message && data.size() > region_.parameters().max_message)
            return complete(std::move(handler), std::make_error_code(std::errc::message_size), 0);
        tx_.emplace(send_op{kind, data, 0, whole_message, std::move(handler)});
        pump();
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        fail(asio::error::operation_aborted);
        std::error_code ignored;
        doorbell_.close(ignored);
        control_.close(ignored);
        stall_timer_.cancel();
        peer_doorbell_.reset();
        if (auto f = std::exchange(on_close_, nullptr)) f();
    }

    const shm::region_parameters& parameters() const { return region_.parameters(); }
    shm_connection::statistics stats() const { return stats_; }

private:
    struct receive_op {
        std::span<std::uint8_t> buffer;
        byte_stream::io_handler bytes;          // set for a byte read
        shm_connection::message_handler message;  // set for a message receive
    };
    struct send_op {
        std::uint16_t kind;
        std::span<const std::uint8_t> data;
        std::size_t done;
        bool whole_message;
        byte_stream::io_handler handler;
    };

    void complete(byte_stream::io_handler h, std::error_code ec, std::size_t n) {
        asio::post(executor_, [h = std::move(h), ec, n] { h(ec, n); });
    }

    // Fails what is pending, and everything started later, with `ec` (the first failure sticks).
    void fail(std::error_code ec) {
        if (!failed_) failed_ = ec;
        if (rx_) {
            auto op = std::move(*rx_);
            rx_.reset();
            if (op.message) asio::post(executor_, [h = std::move(op.message), ec = failed_] { h(ec, 0, 0); });
            else complete(std::move(op.bytes), failed_, 0);
        }
        if (tx_) {
            auto op = std::move(*tx_);
            tx_.reset();
            complete(std::move(op.handler), failed_, op.done);
        }
    }

    void pump() {
        if (failed_) return fail(failed_);
        bool ring_peer = false;
        if (rx_) pump_receive(ring_peer);
        if (tx_ && !failed_) pump_send(ring_peer);
        if (ring_peer && peer_doorbell_) {
            signal_doorbell(peer_doorbell_.get());
            ++stats_.doorbells_rung;
        }
        if (failed_) return fail(failed_);
        if ((rx_ || tx_) && !waiting_) wait_for_doorbell();
    }

    // Reads one message from the inbound ring into `into`. Returns false if there is none.
    bool read_message(std::span<std::uint8_t> into, std::uint16_t& kind, std::size_t& length, bool& ring_peer) {
        switch (region_.inbound().read(into, kind, length)) {
        case shm::ring_status::ok:
            ++stats_.messages_received;
            if (region_.inbound().producer_waiting()) ring_peer = true;  // it waits for the room we just made
            return true;
        case shm::ring_status::empty: return false;
        default:
            if (!failed_) failed_ = errc::shm_corrupt_ring;  // pump() fails the operations
            return false;
        }
    }

    void pump_receive(bool& ring_peer) {
        auto& op = *rx_;
        std::uint16_t kind = 0;
        std::size_t length = 0;
        if (op.message) {
            if (!read_message(op.buffer, kind, length, ring_peer)) return;
            auto h = std::move(op.message);
            rx_.reset();
            asio::post(executor_, [h = std::move(h), kind, length] { h({}, kind, length); });
            return;
        }
        // A byte read: first what is left of a message handed out in part, then whole messages
        // while the buffer has room for the largest one (straight into it), then one into the stage.
        std::size_t filled = 0;
        if (staged_ < stage_length_) {
            filled = std::min(op.buffer.size(), stage_length_ - staged_);
            std::copy_n(stage_.begin() + static_cast<std::ptrdiff_t>(staged_), filled, op.buffer.begin());
            staged_ += filled;
        }
        const std::size_t max = region_.parameters().max_message;
        while (staged_ == stage_length_ && filled < op.buffer.size()) {
            const bool direct = op.buffer.size() - filled >= max;
            const auto into = direct ? op.buffer.subspan(filled) : std::span<std::uint8_t>(stage_);
            if (!read_message(into, kind, length, ring_peer)) break;
            if (kind != KDCOM_SHM_KDCOM_BYTES) {
                failed_ = errc::shm_unexpected_message;  // after handing over what came before it
                break;
            }
            if (direct) {
                filled += length;
            } else {
                const std::size_t n = std::min(length, op.buffer.size() - filled);
                std::copy_n(stage_.begin(), n, op.buffer.begin() + static_cast<std::ptrdiff_t>(filled));
                filled += n;
                staged_ = n;
                stage_length_ = length;
            }
        }
        if (filled == 0) return;
        auto h = std::move(op.bytes);
        rx_.reset();
        complete(std::move(h), {}, filled);
    }

    void pump_send(bool& ring_peer) {
        auto& op = *tx_;
        auto& out = region_.outbound();
        const std::size_t max = region_.parameters().max_message;
        bool first = op.whole_message && op.done == 0;  // a message may be empty; a byte chunk is not
        while (op.done < op.data.size() || first) {
            const auto chunk = op.data.subspan(op.done, std::min(max, op.data.size() - op.done));
            auto status = out.write(op.kind, chunk);
            if (status == shm::ring_status::full) {
                // Ask to be woken when the consumer makes room, then look again (layout.h).
                out.mark_waiting(true);
                marked_waiting_ = true;
                status = out.write(op.kind, chunk);
                if (status == shm::ring_status::full) {
                    ++stats_.waits_for_room;
                    watch_for_stall();
                    return;
                }
            }
            if (status != shm::ring_status::ok) {  // pump() fails the operation
                failed_ = status == shm::ring_status::corrupt ? make_error_code(errc::shm_corrupt_ring)
                                                              : std::make_error_code(std::errc::message_size);
                return;
            }
            if (std::exchange(marked_waiting_, false)) out.mark_waiting(false);
            ++stats_.messages_sent;
            ++progress_;
            op.done += chunk.size();
            ring_peer = true;
            first = false;
        }
        auto h = std::move(op.handler);
        const std::size_t n = op.done;
        tx_.reset();
        complete(std::move(h), {}, n);
    }

    void wait_for_doorbell() {
        waiting_ = true;
        doorbell_.async_wait(asio::posix::descriptor_base::wait_read, [self = shared_from_this()](std::error_code ec) {
            self->waiting_ = false;
            if (self->closed_ || ec == asio::error::operation_aborted) return;
            std::uint64_t count;
            while (::read(self->doorbell_.native_handle(), &count, sizeof count) == sizeof count) {
            }
            ++self->stats_.doorbells_answered;
            self->pump();
        });
    }

    // A send waiting for room fails if the peer frees none for stall_timeout.
    void watch_for_stall() {
        if (stall_armed_) return;
        stall_armed_ = true;
        const std::uint64_t progress_then = progress_;
        stall_timer_.expires_after(stall_timeout_);
        stall_timer_.async_wait([self = shared_from_this(), progress_then](std::error_code ec) {
            self->stall_armed_ = false;
            if (self->closed_ || ec == asio::error::operation_aborted || !self->tx_) return;
            if (self->progress_ == progress_then) return self->fail(errc::peer_stalled);
            self->watch_for_stall();
        });
    }

    // The peer never writes to the socket; end of file (or any error) means its process is gone.
    void watch_control() {
        control_.async_read_some(asio::buffer(&control_byte_, 1), [self = shared_from_this()](std::error_code ec, std::size_t) {
            if (self->closed_ || ec == asio::error::operation_aborted) return;
            if (!ec) return self->watch_control();
            self->fail(asio::error::eof);
        });
    }

    asio::any_io_executor executor_;
    mapping memory_;
    shm::region region_;
    asio::posix::stream_descriptor doorbell_;
    unique_fd peer_doorbell_;
    asio::local::stream_protocol::socket control_;
    asio::steady_timer stall_timer_;
    std::chrono::steady_clock::duration stall_timeout_;
    std::function<void()> on_close_;

    std::optional<receive_op> rx_;
    std::optional<send_op> tx_;
    std::vector<std::uint8_t> stage_;  // a message a small byte read could not take whole
    std::size_t staged_ = 0, stage_length_ = 0;
    std::error_code failed_;
    bool closed_ = false, waiting_ = false, stall_armed_ = false, marked_waiting_ = false;
    std::uint64_t progress_ = 0;
    std::uint8_t control_byte_ = 0;
    shm_connection::statistics stats_;
};

class connection final : public shm_connection {
public:
    connection(std::shared_ptr<channel> c, std::string description)
        : channel_(std::move(c)), description_(std::move(description)) {}
    ~connection() override { channel_->close(); }

    void async_read_some(std::span<std::uint8_t> buffer, io_handler handler) override {
        channel_->receive_bytes(buffer, std::move(handler));
    }
    void async_write(std::span<const std::uint8_t> bytes, io_handler handler) override {
        channel_->send(KDCOM_SHM_KDCOM_BYTES, bytes, false, std::move(handler));
    }
    void async_receive_message(std::span<std::uint8_t> buffer, message_handler handler) override {
        channel_->receive_message(buffer, std::move(handler));
    }
    void async_send_message(std::uint16_t kind, std::span<const std::uint8_t> payload, io_handler handler) override {
        channel_->send(kind, payload, true, std::move(handler));
    }
    void close() override { channel_->close(); }
    std::string describe() const override { return description_; }
    const shm::region_parameters& parameters() const override { return channel_->parameters(); }
    statistics stats() const override { return channel_->stats(); }

private:
    std::shared_ptr<channel> channel_;
    std::string description_;
};

}  // namespace

std::unique_ptr<shm_connection> make_connection(connection_parts parts) {
    auto description = parts.description;
    auto ex = parts.control.get_executor();
    auto c = std::make_shared<channel>(ex, std::move(parts));
    c->start();
    return std::make_unique<connection>(std::move(c), std::move(description));
}

}  // namespace kdcom::net::shm_detail
