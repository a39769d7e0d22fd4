// The bridge: guest PDUs in, KDCOM target role out. Each guest connection gets an epoch; handlers
// started for an earlier guest (one that rebooted or was dropped) see a different epoch and do
// nothing.
#include "kdcom/bridge/bridge.hpp"

#include <deque>
#include <optional>
#include <vector>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/status.hpp"
#include "kdcom/net/shm_connection.hpp"
#include "kdcom/shm/kd_pdu.hpp"

namespace kdcom::bridge {
namespace {

// An answer with no bytes (SENT, or RECEIVED without a packet).
shm::kd_pdu status_answer(std::uint16_t operation, std::uint16_t type, std::uint32_t sequence, std::uint32_t status) {
    shm::kd_pdu a;
    a.operation = operation;
    a.packet_type = type;
    a.sequence = sequence;
    a.status = status;
    return a;
}

class bridge_impl final : public bridge, public std::enable_shared_from_this<bridge_impl> {
public:
    bridge_impl(std::unique_ptr<net::link> guest, std::unique_ptr<net::link> debugger, options o)
        : executor_(guest->get_executor()), guest_link_(std::move(guest)), options_(std::move(o)),
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

    statistics stats() const override { return stats_; }
    void set_notice_handler(notice_function f) override { notice_ = std::move(f); }
    net::session& debugger_session() override { return *session_; }

private:
    struct pending_receive {
        std::uint16_t type;
        std::uint32_t sequence;
        std::uint16_t header_capacity, data_capacity;
    };

    void notify(const std::string& text) {
        if (notice_) notice_(text);
    }

    // --- the guest side ---

    void open_guest() {
        guest_link_->async_open([self = shared_from_this()](std::error_code ec, std::unique_ptr<net::byte_stream> s) {
            if (self->closed_) return;
            if (ec) {
                self->notify("guest link: " + ec.message() + "; retrying");
                self->retry_timer_.expires_after(std::chrono::milliseconds(100));
                self->retry_timer_.async_wait([self](std::error_code e) {
                    if (!e && !self->closed_) self->open_guest();
                });
                return;
            }
            // A shm:// link hands out shm_connections (shm_link.hpp).
            self->guest_.reset(static_cast<net::shm_connection*>(s.release()));
            ++self->epoch_;
            ++self->stats_.guests_attached;
            self->guest_buffer_.resize(self->guest_->max_message());
            self->notify("guest attached: " + self->guest_->describe());
            self->read_guest();
        });
    }

    // Forgets the guest (it rebooted, died, or broke the rules) and waits for the next one.
    void drop_guest(std::error_code why) {
        if (!guest_) return;
        const bool misbehaved = why.category() == error_category();
        if (misbehaved) ++stats_.guest_errors;
        notify(std::string(misbehaved ? "guest dropped: " : "guest gone: ") + why.message());
        guest_->close();
        guest_.reset();
        ++epoch_;
        receive_.reset();
        receive_timer_.cancel();
        reset_unreported_ = false;  // the next guest reports its state when it breaks
        outbox_.clear();
        writing_ = false;
        reading_guest_ = false;
        if (guest_send_in_flight_) session_->cancel_send();  // nobody waits for it any more
        guest_send_in_flight_ = false;
        reset_after_send_completed_ = false;
        sent_owed_.reset();
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
            ++self->stats_.guest_calls;
            // The guest waits for the answer: no polling for its next call until it has it.
            self->guest_->peer_awaits_answer();
            if (auto e = self->on_guest_call(call)) return self->drop_guest(e);
            self->read_guest();
        });
    }

    std::error_code on_guest_call(const shm::kd_pdu& call) {
        switch (call.operation) {
        case KDCOM_SHM_PDU_SEND: {
            if (guest_send_in_flight_) return errc::shm_malformed_pdu;  // KdSendPacket is not re-entrant either
            guest_send_in_flight_ = true;
            const auto type = static_cast<wire::packet_type>(call.packet_type);
            const shm::kd_pdu sent_answer = status_answer(KDCOM_SHM_PDU_SENT, call.packet_type, call.sequence, 0);
            const bool takes_packet = (call.status & KDCOM_SHM_SEND_TAKES_PACKET) != 0;
            session_->async_send(type, call.header, call.data,
                                 [self = shared_from_this(), epoch = epoch_, sent_answer, takes_packet, type](std::error_code ec) {
                                     if (self->closed_ || epoch != self->epoch_ || ec == asio::error::operation_aborted)
                                         return;
                                     if (!ec) ++self->stats_.packets_to_debugger;
                                     // The debugger now knows the kernel's state: a reset before
                                     // this needs no state change again; a reset after it does.
                                     const bool reset_after = std::exchange(self->reset_after_send_completed_, false);
                                     if (!ec && type == wire::packet_type::state_change64 && !reset_after)
                                         self->reset_unreported_ = false;
                                     shm::kd_pdu sent = sent_answer;
                                     sent.status = ec ? KDCOM_SHM_SEND_GAVE_UP : KDCOM_SHM_SEND_ACKNOWLEDGED;
                                     if (!takes_packet || !self->inbox_.empty()) return self->finish_send(sent, takes_packet);
                                     // The debugger's next request usually comes in the same read as
                                     // this acknowledgement, and reaches the bridge just after this
                                     // handler: answer when it does, so that it can come along, or
                                     // a turn later without it.
                                     self->sent_owed_ = sent;
                                     asio::post(self->executor_, [self, epoch] {
                                         if (!self->closed_ && epoch == self->epoch_) self->pay_sent_owed();
                                     });
                                 });
            return {};
        }
        case KDCOM_SHM_PDU_RECEIVE:
            if (call.packet_type == static_cast<std::uint16_t>(wire::packet_type::poll_breakin)) {
                const bool pending = session_->poll_breakin();
                answer(status_answer(KDCOM_SHM_PDU_RECEIVED, call.packet_type, call.sequence,
                                     pending ? KDCOM_SHM_RECEIVE_OK : KDCOM_SHM_RECEIVE_TIMEOUT));
                return {};
            }
            if (receive_) return errc::shm_malformed_pdu;  // KdReceivePacket is not re-entrant
            receive_ = pending_receive{call.packet_type, call.sequence, call.header_capacity, call.data_capacity};
            if (std::exchange(reset_unreported_, false)) {
                finish_receive(KDCOM_SHM_RECEIVE_RESEND);
                return {};
            }
            try_deliver();
            if (receive_) {
                receive_timer_.expires_after(std::chrono::milliseconds(call.status));
                receive_timer_.async_wait([self = shared_from_this(), epoch = epoch_](std::error_code ec) {
                    if (ec || self->closed_ || epoch != self->epoch_ || !self->receive_) return;
                    self->finish_receive(KDCOM_SHM_RECEIVE_TIMEOUT);
                });
            }
            return {};
        default: return errc::shm_malformed_pdu;  // answers travel the other way
        }
    }

    void finish_receive(std::uint32_t status, const net::received_packet* p = nullptr) {
        const auto r = *receive_;
        receive_.reset();
        receive_timer_.cancel();
        shm::kd_pdu a = status_answer(KDCOM_SHM_PDU_RECEIVED, r.type, r.sequence, status);
        if (p) {
            const std::size_t header = std::min<std::size_t>(r.header_capacity, p->body.size());
            a.header = std::span(p->body).first(header);
            a.data = std::span(p->body).subspan(header);
        }
        if (status == KDCOM_SHM_RECEIVE_RESEND) ++stats_.resends_to_guest;
        answer(a);
    }

    void pay_sent_owed() {
        if (auto sent = std::exchange(sent_owed_, std::nullopt)) finish_send(*sent, true);
    }

    // Answers the guest's SEND; with `takes_packet`, the debugger's next packet, if one is waiting,
    // goes along and is the guest's to keep (layout.h).
    void finish_send(shm::kd_pdu sent, bool takes_packet) {
        guest_send_in_flight_ = false;
        if (!takes_packet || inbox_.empty() ||
            shm::kd_pdu_fixed_size + inbox_.front().body.size() > guest_->max_message())
            return answer(sent);
        const net::received_packet p = std::move(inbox_.front());
        inbox_.pop_front();
        sent.status |= KDCOM_SHM_SENT_CARRIES_PACKET;
        sent.packet_type = static_cast<std::uint16_t>(p.type);
        sent.data = p.body;
        ++stats_.packets_to_guest;
        ++stats_.packets_carried;
        answer(sent);
        receive_from_debugger();
    }

    void answer(const shm::kd_pdu& a) {
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
                                       ++self->stats_.guest_answers;
                                       self->write_guest();
                                       self->read_guest();  // if a full outbox had stopped it
                                   });
    }

    // --- the debugger side ---

    void receive_from_debugger() {
        if (receiving_ || closed_ || inbox_.size() >= options_.inbox_limit) return;
        receiving_ = true;
        session_->async_receive([self = shared_from_this()](std::error_code ec, net::received_packet p) {
            self->receiving_ = false;
            if (ec || self->closed_) return;
            if (!self->serve_from_host(p)) {
                self->inbox_.push_back(std::move(p));
                self->try_deliver();
                self->pay_sent_owed();  // with this packet
            }
            self->receive_from_debugger();
        });
    }

    // The fast path: a physical memory read answered from guest memory by the host.
    bool serve_from_host(const net::received_packet& p) {
        if (!options_.read_physical || p.type != wire::packet_type::state_manipulate) return false;
        auto request = kd::decode_manipulate(p.body);
        if (!request || request->api != kd::manipulate_api::read_physical_memory) return false;
        const std::size_t room = wire::default_max_body - kd::manipulate_header_size;
        const std::size_t wanted = std::min<std::size_t>(request->memory.transfer_count, room);
        auto& data = fast_path_data_;  // async_send takes the bytes before it returns
        data.resize(wanted);
        const std::size_t got = std::min(options_.read_physical(request->memory.address, data), wanted);
        data.resize(got);
        kd::manipulate_header reply = *request;
        // As the kernel answers: nothing read of something asked for is a failure.
        reply.return_status = got > 0 || wanted == 0 ? kd::status::success : kd::status::unsuccessful;
        reply.memory.actual_bytes = static_cast<std::uint32_t>(got);
        std::uint8_t header[kd::manipulate_header_size];
        kd::encode_manipulate(reply, header);
        ++stats_.fast_path_reads;
        session_->async_send(wire::packet_type::state_manipulate, header, data, [](std::error_code) {});
        return true;
    }

    void try_deliver() {
        while (receive_ && !inbox_.empty()) {
            const net::received_packet p = std::move(inbox_.front());
            inbox_.pop_front();
            if (static_cast<std::uint16_t>(p.type) != receive_->type) {
                ++stats_.packets_dropped;  // kdcom.dll drops what the kernel is not waiting for
                continue;
            }
            if (p.body.size() > std::size_t{receive_->header_capacity} + receive_->data_capacity) {
                finish_receive(KDCOM_SHM_RECEIVE_RESEND);
                break;
            }
            ++stats_.packets_to_guest;
            finish_receive(KDCOM_SHM_RECEIVE_OK, &p);
        }
        receive_from_debugger();
    }

    void on_session(const net::session_notice& n) {
        using what = net::session_notice::what;
        switch (n.kind) {
        case what::stream_opened: notify("debugger attached: " + n.text); break;
        case what::stream_closed: notify("debugger gone: " + n.text); break;
        case what::link_failed: notify("debugger link: " + n.text); break;
        case what::endpoint_event:
            if (n.event && std::holds_alternative<events::peer_reset>(*n.event)) {
                // A new conversation: what the old one asked is void, and the kernel must send
                // its state change again. A kernel between calls learns it from its next receive,
                // as kdcom.dll's would find the RESET waiting on the line, unless it reports its
                // state first (a break, or a send that was in flight and went to the new debugger).
                // This completion reaches us after this notice even when the ACK came first (both
                // in one read): if the endpoint has finished the guest's send already, the reset
                // came after it, and the state it reported is the old debugger's.
                if (guest_send_in_flight_ && !session_->protocol().send_in_progress()) reset_after_send_completed_ = true;
                inbox_.clear();
                if (receive_) finish_receive(KDCOM_SHM_RECEIVE_RESEND);
                else reset_unreported_ = true;
                receive_from_debugger();
            }
            break;
        case what::closed: break;
        }
    }

    asio::any_io_executor executor_;
    std::unique_ptr<net::link> guest_link_;
    options options_;
    std::shared_ptr<net::session> session_;
    std::unique_ptr<net::shm_connection> guest_;
    std::uint64_t epoch_ = 0;
    std::vector<std::uint8_t> guest_buffer_;
    std::deque<std::vector<std::uint8_t>> outbox_;  // answers for the guest, at most outbox_limit
    static constexpr std::size_t outbox_limit = 16;
    bool reading_guest_ = false;
    std::vector<std::uint8_t> spare_message_;   // the last answer sent, its buffer kept for the next
    std::vector<std::uint8_t> fast_path_data_;  // the fast path's read, reused for each
    std::deque<net::received_packet> inbox_;
    std::optional<pending_receive> receive_;
    asio::steady_timer receive_timer_, retry_timer_;
    bool writing_ = false, receiving_ = false, closed_ = false, guest_send_in_flight_ = false;
    bool reset_unreported_ = false;  // the debugger reset the link while the guest was not receiving
    bool reset_after_send_completed_ = false;  // a reset came after the endpoint finished the guest's send
    std::optional<shm::kd_pdu> sent_owed_;  // a SENT waiting, for a turn at most, for a packet to carry
    statistics stats_;
    notice_function notice_;
};

}  // namespace

std::shared_ptr<bridge> bridge::create(std::unique_ptr<net::link> guest, std::unique_ptr<net::link> debugger, options o) {
    return std::make_shared<bridge_impl>(std::move(guest), std::move(debugger), std::move(o));
}

}  // namespace kdcom::bridge
