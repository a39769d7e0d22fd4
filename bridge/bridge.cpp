// The bridge's runner: Asio plumbing around bridge::core (kdcom/bridge/core.hpp), which holds every
// rule. This file reads guest PDUs from the shared-memory connection, gives the core guest calls,
// debugger packets, resets and time, and carries out what it asks: answers written to the guest,
// packets sent to the debugger, queries about break-ins and guest memory. Each guest connection
// gets an epoch; handlers started for an earlier guest (one that rebooted or was dropped) see a
// different epoch and do nothing.
#include "kdcom/bridge/bridge.hpp"

#include <deque>
#include <optional>
#include <vector>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "kdcom/bridge/core.hpp"
#include "kdcom/net/shm_connection.hpp"
#include "kdcom/shm/kd_pdu.hpp"

namespace kdcom::bridge {
namespace {

class bridge_impl final : public bridge, public std::enable_shared_from_this<bridge_impl> {
public:
    bridge_impl(std::unique_ptr<net::link> guest, std::unique_ptr<net::link> debugger, options o)
        : executor_(guest->get_executor()), guest_link_(std::move(guest)), options_(std::move(o)),
          core_({.fast_path = static_cast<bool>(options_.read_physical), .inbox_limit = options_.inbox_limit}),
          receive_timer_(executor_), retry_timer_(executor_) {
        endpoint_config config = options_.endpoint;
        config.role = role::target;
        session_ = net::session::create(std::move(debugger), config, options_.session);
    }

    void start() override {
        // Weak: the session belongs to the bridge, so a strong reference back would be a cycle.
        session_->set_notice_handler([weak = weak_from_this()](const net::session_notice& n) {
            if (auto self = weak.lock()) self->on_session(n);
        });
        session_->start();
        receive_from_debugger();
        open_guest();
    }

    void close() override {
        if (closed_) return;
        closed_ = true;
        receive_timer_.cancel();
        retry_timer_.cancel();
        if (guest_) guest_->close();
        guest_link_->close();
        session_->close();
    }

    statistics stats() const override { return core_.stats(); }
    void set_notice_handler(notice_function f) override { notice_ = std::move(f); }
    net::session& debugger_session() override { return *session_; }

private:
    void notify(const std::string& text) {
        if (notice_) notice_(text);
    }

    timestamp now() const { return std::chrono::duration_cast<timestamp>(std::chrono::steady_clock::now() - started_); }

    // Carries out what the core asks, then arranges what it waits for: the end of this turn, its
    // deadline, and room for the debugger's packets.
    void run_core() {
        while (auto e = core_.next_event()) {
            if (auto* a = std::get_if<bridge_events::answer_guest>(&*e)) {
                write_answer(a->pdu);
            } else if (auto* s = std::get_if<bridge_events::send_to_debugger>(&*e)) {
                send_to_debugger(*s);
            } else if (std::holds_alternative<bridge_events::cancel_guest_send>(*e)) {
                session_->cancel_send();  // the guest's, or a fast-path reply queued before it
            } else if (std::holds_alternative<bridge_events::poll_breakin>(*e)) {
                core_.breakin_polled(session_->poll_breakin());
            } else if (auto* r = std::get_if<bridge_events::read_guest_memory>(&*e)) {
                core_.guest_memory_read(options_.read_physical(r->address, r->into));
            }
        }
        if (core_.waits_for_turn_end() && !turn_end_posted_) {
            // The debugger's next request usually comes in the same read as the acknowledgement
            // that ended the guest's send, and reaches us just after it: end the turn once the
            // handlers already queued have run.
            turn_end_posted_ = true;
            asio::post(executor_, [self = shared_from_this()] {
                self->turn_end_posted_ = false;
                if (self->closed_) return;
                self->core_.end_of_turn();
                self->run_core();
            });
        }
        arm_receive_timer();
        receive_from_debugger();
    }

    void arm_receive_timer() {
        const auto deadline = core_.deadline();
        if (deadline == armed_deadline_) return;
        armed_deadline_ = deadline;
        if (!deadline) {
            receive_timer_.cancel();
            return;
        }
        receive_timer_.expires_at(started_ + *deadline);
        receive_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
            if (ec || self->closed_) return;
            self->armed_deadline_.reset();
            self->core_.on_time(self->now());
            self->run_core();
        });
    }

    // --- the guest side ---

    void open_guest() {
        guest_link_->async_open([self = shared_from_this()](std::error_code ec, std::unique_ptr<net::byte_stream> s) {
            if (self->closed_) return;
            auto* connection = dynamic_cast<net::shm_connection*>(s.get());
            if (!ec && !connection) ec = errc::shm_unexpected_message;
            if (ec) {
                self->notify("guest link: " + ec.message() + (s ? " (not a shared-memory guest link)" : "") + "; retrying");
                if (s) s->close();
                self->retry_timer_.expires_after(std::chrono::milliseconds(100));
                self->retry_timer_.async_wait([self](std::error_code e) {
                    if (!e && !self->closed_) self->open_guest();
                });
                return;
            }
            s.release();
            self->guest_.reset(connection);
            ++self->epoch_;
            self->guest_buffer_.resize(self->guest_->max_message());
            self->core_.guest_attached(self->guest_->max_message());
            self->notify("guest attached: " + self->guest_->describe());
            self->read_guest();
        });
    }

    // Forgets the guest (it rebooted, died, or broke the rules) and waits for the next one.
    void drop_guest(std::error_code why) {
        if (!guest_) return;
        const bool misbehaved = why.category() == error_category();
        notify(std::string(misbehaved ? "guest dropped: " : "guest gone: ") + why.message());
        core_.guest_detached(misbehaved);  // a no-op when the core detached it for a bad call
        guest_->close();
        guest_.reset();
        ++epoch_;
        outbox_.clear();
        writing_ = false;
        reading_guest_ = false;
        run_core();
        if (!closed_) open_guest();
    }

    // One guest call at a time; none while the answers to earlier ones wait to be written (a
    // guest that calls and never reads its answers is then stalled, and dropped for it, instead
    // of growing the outbox).
    void read_guest() {
        if (reading_guest_ || !guest_ || outbox_.size() >= outbox_limit) return;
        reading_guest_ = true;
        guest_->async_receive_message(guest_buffer_, [self = shared_from_this(), epoch = epoch_](
                                                         std::error_code ec, std::uint16_t kind, std::size_t length) {
            if (self->closed_ || epoch != self->epoch_) return;
            self->reading_guest_ = false;
            if (ec) return self->drop_guest(ec);
            if (kind != KDCOM_SHM_KD_PDU) return self->drop_guest(errc::shm_unexpected_message);
            shm::kd_pdu call;
            if (auto e = shm::decode_kd_pdu(std::span(self->guest_buffer_).first(length), call)) return self->drop_guest(e);
            // The guest waits for the answer: no polling for its next call until it has it.
            self->guest_->peer_awaits_answer();
            if (auto e = self->core_.guest_call(call, self->now())) return self->drop_guest(e);
            self->run_core();
            self->read_guest();
        });
    }

    void write_answer(const shm::kd_pdu& a) {
        if (!guest_) return;
        std::vector<std::uint8_t> message = std::move(spare_message_);  // empty, or a sent answer's buffer
        message.resize(shm::kd_pdu_size(a));
        std::error_code ec;
        shm::encode_kd_pdu(a, message, ec);
        outbox_.push_back(std::move(message));
        write_guest();
    }

    void write_guest() {
        if (writing_ || outbox_.empty() || !guest_) return;
        writing_ = true;
        guest_->async_send_message(KDCOM_SHM_KD_PDU, outbox_.front(),
                                   [self = shared_from_this(), epoch = epoch_](std::error_code ec, std::size_t) {
                                       if (self->closed_ || epoch != self->epoch_) return;
                                       self->writing_ = false;
                                       self->spare_message_ = std::move(self->outbox_.front());
                                       self->outbox_.pop_front();
                                       if (ec) return self->drop_guest(ec);
                                       self->write_guest();
                                       self->read_guest();  // if a full outbox had stopped it
                                   });
    }

    // --- the debugger side ---

    void send_to_debugger(const bridge_events::send_to_debugger& s) {
        if (s.purpose == send_purpose::fast_path) {
            session_->async_send(s.type, s.header, s.data, [](std::error_code) {});
            return;
        }
        session_->async_send(s.type, s.header, s.data, [self = shared_from_this(), id = s.id](std::error_code ec) {
            // Aborted: cancelled for a guest that left, or the session closed.
            if (self->closed_ || ec == asio::error::operation_aborted) return;
            self->core_.guest_send_finished(id, !ec);
            self->run_core();
        });
    }

    void receive_from_debugger() {
        if (receiving_ || closed_ || !core_.wants_debugger_packets()) return;
        receiving_ = true;
        session_->async_receive([self = shared_from_this()](std::error_code ec, net::received_packet p) {
            self->receiving_ = false;
            if (ec || self->closed_) return;
            self->core_.debugger_packet(p.type, p.body);
            self->run_core();
        });
    }

    void on_session(const net::session_notice& n) {
        using what = net::session_notice::what;
        switch (n.kind) {
        case what::stream_opened: notify("debugger attached: " + n.text); break;
        case what::stream_closed: notify("debugger gone: " + n.text); break;
        case what::link_failed: notify("debugger link: " + n.text); break;
        case what::endpoint_event:
            if (n.event && std::holds_alternative<events::peer_reset>(*n.event)) {
                // The completion of a send the endpoint finished in the same read reaches us after
                // this notice: tell the core, which then knows the reset came after it.
                core_.debugger_reset(!session_->protocol().send_in_progress());
                run_core();
            }
            break;
        case what::closed: break;
        }
    }

    asio::any_io_executor executor_;
    std::unique_ptr<net::link> guest_link_;
    options options_;
    core core_;
    const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    std::shared_ptr<net::session> session_;
    std::unique_ptr<net::shm_connection> guest_;
    std::uint64_t epoch_ = 0;
    std::vector<std::uint8_t> guest_buffer_;
    std::deque<std::vector<std::uint8_t>> outbox_;  // answers for the guest, at most outbox_limit
    static constexpr std::size_t outbox_limit = 16;
    std::vector<std::uint8_t> spare_message_;  // the last answer sent, its buffer kept for the next
    asio::steady_timer receive_timer_, retry_timer_;
    std::optional<timestamp> armed_deadline_;
    bool reading_guest_ = false, writing_ = false, receiving_ = false, closed_ = false, turn_end_posted_ = false;
    notice_function notice_;
};

}  // namespace

std::shared_ptr<bridge> bridge::create(std::unique_ptr<net::link> guest, std::unique_ptr<net::link> debugger, options o) {
    return std::make_shared<bridge_impl>(std::move(guest), std::move(debugger), std::move(o));
}

}  // namespace kdcom::bridge
