// The shared-memory channel: rings in a mapped region, eventfd doorbells, and a socket that says
// when the peer process is gone. All work happens in pump(), which runs whenever an operation
// starts or the doorbell rings, and moves whatever can move without waiting.
#include "connection_parts.hpp"

#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <vector>

#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include "kdcom/error.hpp"
#include "kdcom/net/detail/executor_shortcuts.hpp"

namespace kdcom::net::shm_detail {
namespace {

class channel final : public std::enable_shared_from_this<channel> {
public:
    explicit channel(connection_parts parts)
        : executor_(parts.executor), memory_(std::move(parts.memory)), region_(parts.region, parts.parameters, parts.side),
          doorbell_(executor_, parts.own_doorbell.release()), ring_peer_(std::move(parts.ring_peer)),
          control_(std::move(parts.control)), hello_timeout_(parts.hello_timeout), hello_timer_(executor_),
          stall_timer_(executor_), stall_timeout_(parts.stall_timeout),
          poll_window_(parts.poll_window), peer_restarted_(std::move(parts.peer_restarted)), on_close_(std::move(parts.on_close)), stage_(parts.parameters.max_message) {}

    void start() {
        if (!control_) return;
        watch_control();
        if (hello_timeout_) {
            hello_timer_.expires_after(*hello_timeout_);
            hello_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
                if (ec || self->closed_ || self->peer_ready_) return;
                self->fail(errc::shm_no_ready);
                self->pump(woken);
            });
        }
    }

    // Ends the connection as if the peer had gone (a VMM saying the guest rebooted).
    void end() {
        if (closed_) return;
        fail(asio::error::eof);
        pump(woken);
    }

    // Starting an operation may finish it at once; its handler then runs later, from the
    // io_context, never inside this call.
    void receive_bytes(std::span<std::uint8_t> buffer, byte_stream::io_handler handler) {
        rx_.emplace(receive_op{buffer, std::move(handler), nullptr, {}, 0, 0});
        if (buffer.empty()) finish_receive({}, 0, 0);
        pump(started);
    }
    void receive_message(std::span<std::uint8_t> buffer, shm_connection::message_handler handler) {
        rx_.emplace(receive_op{buffer, nullptr, std::move(handler), {}, 0, 0});
        if (buffer.size() < region_.parameters().max_message)
            finish_receive(std::make_error_code(std::errc::no_buffer_space), 0, 0);
        pump(started);
    }
    void send(std::uint16_t kind, std::span<const std::uint8_t> data, bool whole_message, byte_stream::io_handler handler) {
        tx_.emplace(send_op{kind, data, 0, whole_message, std::move(handler), {}});
        if (whole_message && data.size() > region_.parameters().max_message)
            finish_send(std::make_error_code(std::errc::message_size));
        pump(started);
    }

    // shm_connection::peer_awaits_answer: nothing to poll for until this side sends.
    // It takes effect at the next look, or the next operation started.
    void peer_awaits_answer() { peer_awaits_answer_ = true; }

    // byte_stream::write_now: the chunks that fit in the ring now, behind nothing still queued.
    std::size_t write_now(std::span<const std::uint8_t> data) {
        if (tx_ || failed_ || closed_) return 0;
        bool ring_peer = false;
        std::size_t done = 0;
        while (done < data.size()) {
            const auto chunk = data.subspan(done, std::min<std::size_t>(region_.parameters().max_message, data.size() - done));
            if (put(KDCOM_SHM_KDCOM_BYTES, chunk, ring_peer) != shm::ring_status::ok) break;  // async_write takes over
            done += chunk.size();
        }
        signal_peer(ring_peer);
        return done;
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        if (!failed_) failed_ = asio::error::operation_aborted;
        if (rx_) finish_receive(asio::error::operation_aborted, 0, 0);
        if (tx_) finish_send(asio::error::operation_aborted);
        std::error_code ignored;
        doorbell_.close(ignored);
        if (control_) control_->close(ignored);
        hello_timer_.cancel();
        stall_timer_.cancel();
        ring_peer_ = nullptr;
        deliver_later();
        if (auto f = std::exchange(on_close_, nullptr)) f();
    }

    const shm::region_parameters& parameters() const { return region_.parameters(); }
    shm_connection::statistics stats() const { return stats_; }

private:
    struct receive_op {
        std::span<std::uint8_t> buffer;
        byte_stream::io_handler bytes;          // set for a byte read
        shm_connection::message_handler message;  // set for a message receive
        std::error_code ec;                      // the result, once finished
        std::size_t length = 0;
        std::uint16_t kind = 0;
    };
    struct send_op {
        std::uint16_t kind;
        std::span<const std::uint8_t> data;
        std::size_t done;
        bool whole_message;
        byte_stream::io_handler handler;
        std::error_code ec;
    };

    // Where pump() runs from: inside a call that starts an operation (handlers must be posted), or
    // from the io_context (a doorbell, a timer: handlers may run at once, saving a trip through
    // the event loop per message).
    enum context { started, woken };

    void finish_receive(std::error_code ec, std::size_t length, std::uint16_t kind) {
        rx_->ec = ec;
        rx_->length = length;
        rx_->kind = kind;
        rx_done_ = std::move(rx_);
        rx_.reset();
    }
    void finish_send(std::error_code ec) {
        tx_->ec = ec;
        tx_done_ = std::move(tx_);
        tx_.reset();
    }

    // Runs the handlers of finished operations. A handler may start the next operation.
    void deliver() {
        auto tx = std::exchange(tx_done_, std::nullopt);
        auto rx = std::exchange(rx_done_, std::nullopt);
        if (tx) tx->handler(tx->ec, tx->done);
        if (rx) {
            if (rx->message) rx->message(rx->ec, rx->kind, rx->length);
            else rx->bytes(rx->ec, rx->length);
        }
    }
    void deliver_later() {
        if (delivery_posted_ || !(rx_done_ || tx_done_)) return;
        delivery_posted_ = true;
        detail::post_to(executor_, [self = shared_from_this()] {
            self->delivery_posted_ = false;
            self->deliver();
        });
    }

    // Fails what is pending, and everything started later, with `ec` (the first failure sticks).
    void fail(std::error_code ec) {
        if (!failed_) failed_ = ec;
        if (rx_) finish_receive(failed_, 0, 0);
        if (tx_) finish_send(failed_);
    }

    // Moves whatever can move without waiting, then waits for the doorbell if anything is left.
    void pump(context from) {
        if (!failed_ && peer_restarted_ && peer_restarted_()) failed_ = std::make_error_code(std::errc::connection_reset);
        if (failed_) {
            fail(failed_);
        } else {
            bool ring_peer = false;
            if (rx_) pump_receive(ring_peer);
            if (tx_ && !failed_) pump_send(ring_peer);
            signal_peer(ring_peer);
            if (failed_) fail(failed_);
            if (rx_ || tx_) idle();
        }
        if (from == woken && !delivery_posted_) deliver();
        else deliver_later();
    }

    void signal_peer(bool ring_peer) {
        if (!ring_peer || !ring_peer_) return;
        ring_peer_();
        ++stats_.doorbells_rung;
    }

    // Appends one message to the outbound ring; on ok, notes whether the peer sleeps and needs
    // its doorbell rung (a consumer that polls needs no signal: its mark is read after our head
    // store).
    shm::ring_status put(std::uint16_t kind, std::span<const std::uint8_t> chunk, bool& ring_peer) {
        // The peer may answer this at once: be awake for it, or it would ring a doorbell.
        const bool woke = std::exchange(peer_awaits_answer_, false) && wake_up();
        auto& out = region_.outbound();
        const auto status = out.write(kind, chunk);
        if (status != shm::ring_status::ok) return status;
        ++stats_.messages_sent;
        if (out.consumer_sleeping()) ring_peer = true;
        if (woke && (rx_ || tx_)) idle();  // a message moved: a new polling window starts
        return status;
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
            if (read_message(op.buffer, kind, length, ring_peer)) finish_receive({}, length, kind);
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
        if (filled > 0) finish_receive({}, filled, KDCOM_SHM_KDCOM_BYTES);
    }

    void pump_send(bool& ring_peer) {
        auto& op = *tx_;
        auto& out = region_.outbound();
        const std::size_t max = region_.parameters().max_message;
        bool first = op.whole_message && op.done == 0;  // a message may be empty; a byte chunk is not
        while (op.done < op.data.size() || first) {
            const auto chunk = op.data.subspan(op.done, std::min(max, op.data.size() - op.done));
            auto status = put(op.kind, chunk, ring_peer);
            if (status == shm::ring_status::full) {
                // Ask to be woken when the consumer makes room, then look again (layout.h).
                out.mark_waiting(true);
                marked_waiting_ = true;
                status = put(op.kind, chunk, ring_peer);
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
            op.done += chunk.size();
            first = false;
        }
        finish_send({});
    }

    // Nothing can move now. Soon after the last message, look again shortly (a posted check, so
    // other work on the io_context goes on); later, or at once while the peer awaits our answer
    // (it sends nothing before it), sleep on the doorbell: mark this side asleep, look once more
    // (a message published before the mark was seen), and wait.
    void idle() {
        if (asleep_ || poll_posted_) return;
        const bool nothing_to_poll_for = peer_awaits_answer_ && !tx_;
        if (nothing_to_poll_for || poll_window_ <= std::chrono::steady_clock::duration::zero() || window_over())
            go_to_sleep_or_look();
        if (asleep_) return;
        poll_posted_ = true;
        detail::post_to(executor_, [self = shared_from_this()] {
            self->poll_posted_ = false;
            if (!self->closed_) self->pump(woken);
        });
    }

    // Whether the polling window since a message last moved is over. A look costs well under a
    // microsecond while reading the clock costs tens of nanoseconds on a virtual machine, so the
    // clock is read on every clock_every-th look only: the window starts at most that many looks
    // late, and no message ever pays for a clock read.
    bool window_over() {
        static constexpr std::uint32_t clock_every = 16;
        if (const auto moved = stats_.messages_sent + stats_.messages_received; moved != moved_when_looked_) {
            moved_when_looked_ = moved;
            looks_ = 0;
            poll_until_.reset();
        }
        if (++looks_ % clock_every != 0) return false;
        const auto now = std::chrono::steady_clock::now();
        if (!poll_until_) poll_until_ = now + poll_window_;
        return now >= *poll_until_;
    }

    void go_to_sleep_or_look() {
        region_.inbound().mark_sleeping(true);
        if (region_.inbound().maybe_readable()) {
            // A message came just as this side was going to sleep: look at it instead.
            region_.inbound().mark_sleeping(false);
            return;
        }
        asleep_ = true;
        if (!waiting_) wait_for_doorbell();  // a wait from an earlier sleep may still be pending
    }

    // Unmarks this side asleep before the doorbell rang: it is about to send, and the answer may
    // come at once. Returns whether it was asleep (the caller starts polling again). The doorbell
    // read stays pending (a late signal just runs the pump once more).
    bool wake_up() {
        if (!asleep_) return false;
        asleep_ = false;
        region_.inbound().mark_sleeping(false);
        return true;
    }

    // Reading the eventfd (rather than waiting for it to become readable) lets Asio try the read
    // at once and keeps the descriptor's epoll registration as it is: an async_wait would cost an
    // epoll_ctl each time. One read takes the whole count.
    void wait_for_doorbell() {
        waiting_ = true;
        doorbell_.async_read_some(asio::buffer(&doorbell_count_, sizeof doorbell_count_),
                                  [self = shared_from_this()](std::error_code ec, std::size_t) {
                                      self->waiting_ = false;
                                      if (self->closed_ || ec == asio::error::operation_aborted) return;
                                      if (std::exchange(self->asleep_, false)) self->region_.inbound().mark_sleeping(false);
                                      ++self->stats_.doorbells_answered;
                                      self->pump(woken);
                                  });
    }

    // A send waiting for room fails if the peer frees none for stall_timeout.
    void watch_for_stall() {
        if (stall_armed_) return;
        stall_armed_ = true;
        const std::uint64_t progress_then = stats_.messages_sent;
        stall_timer_.expires_after(stall_timeout_);
        stall_timer_.async_wait([self = shared_from_this(), progress_then](std::error_code ec) {
            self->stall_armed_ = false;
            if (self->closed_ || ec == asio::error::operation_aborted || !self->tx_) return;
            if (self->stats_.messages_sent == progress_then) {
                self->fail(errc::peer_stalled);
                return self->pump(woken);
            }
            self->watch_for_stall();
        });
    }

    // The peer writes one byte to the socket, its ready byte (after that, bytes mean nothing);
    // end of file (or any error) means its process is gone.
    void watch_control() {
        control_->async_read_some(asio::buffer(&control_byte_, 1), [self = shared_from_this()](std::error_code ec, std::size_t) {
            if (self->closed_ || ec == asio::error::operation_aborted) return;
            if (!ec) {
                if (self->control_byte_ == shm_ready_byte && !self->peer_ready_) {
                    self->peer_ready_ = true;
                    self->hello_timer_.cancel();
                }
                return self->watch_control();
            }
            self->fail(asio::error::eof);
            self->pump(woken);
        });
    }

    asio::any_io_executor executor_;
    mapping memory_;
    shm::region region_;
    asio::posix::stream_descriptor doorbell_;
    std::function<void()> ring_peer_;
    std::optional<asio::local::stream_protocol::socket> control_;
    std::optional<std::chrono::steady_clock::duration> hello_timeout_;
    asio::steady_timer hello_timer_;
    bool peer_ready_ = false;
    asio::steady_timer stall_timer_;
    std::chrono::steady_clock::duration stall_timeout_;
    std::chrono::steady_clock::duration poll_window_;
    // Poll rather than sleep until then; unset until the current window's first clock read.
    std::optional<std::chrono::steady_clock::time_point> poll_until_;
    std::uint64_t moved_when_looked_ = 0;                   // messages moved when idle() last looked
    std::uint32_t looks_ = 0;                               // idle() calls since a message moved
    std::function<bool()> peer_restarted_;
    std::function<void()> on_close_;

    std::optional<receive_op> rx_, rx_done_;  // in progress; finished, handler not yet run
    std::optional<send_op> tx_, tx_done_;
    std::vector<std::uint8_t> stage_;  // a message a small byte read could not take whole
    std::size_t staged_ = 0, stage_length_ = 0;
    std::error_code failed_;
    bool closed_ = false, delivery_posted_ = false, poll_posted_ = false, stall_armed_ = false, marked_waiting_ = false;
    bool waiting_ = false;              // a read of the doorbell is pending
    bool asleep_ = false;               // marked asleep: the peer rings the doorbell for its next message
    bool peer_awaits_answer_ = false;   // until this side next sends (peer_awaits_answer())
    std::uint8_t control_byte_ = 0;
    std::uint64_t doorbell_count_ = 0;
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
    std::size_t write_now(std::span<const std::uint8_t> bytes) override { return channel_->write_now(bytes); }
    void peer_awaits_answer() override { channel_->peer_awaits_answer(); }
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
    auto* end_from_outside = parts.end_from_outside;
    auto c = std::make_shared<channel>(std::move(parts));
    c->start();
    if (end_from_outside)
        *end_from_outside = [weak = std::weak_ptr<channel>(c)] {
            if (auto live = weak.lock()) live->end();
        };
    return std::make_unique<connection>(std::move(c), std::move(description));
}

}  // namespace kdcom::net::shm_detail
