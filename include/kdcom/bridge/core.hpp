// The bridge's rules, sans-I/O: the guest's KdSendPacket/KdReceivePacket calls (KD PDUs, one
// shared-memory message each) on one side, the packets of a KDCOM target endpoint toward the
// debugger on the other. It owns no ring, socket, timer or clock: the runner (bridge/bridge.cpp
// with Asio; sim/bridged_target.hpp in virtual time) feeds it calls, packets and time and carries
// out the events it emits (events.hpp).
//
//     bridge::core c({.fast_path = true});
//     c.guest_attached(max_message);
//     c.guest_call(pdu, now);                // or debugger_packet(), debugger_reset(), ...
//     while (auto e = c.next_event()) run(*e);   // answer the guest, send to the debugger, ...
//     if (c.waits_for_turn_end()) ...        // call end_of_turn() once this read is handled
//     ...                                    // call on_time(now) when now >= *c.deadline()
//
// What the guest sees is what kdcom.dll would give it (docs/bridge.md):
// - SEND completes when the debugger acknowledged the packet, or with GAVE_UP when the endpoint
//   gave up (only the droppable kinds); RECEIVE of a type completes with the next packet of that
//   type (others are dropped, as kdcom.dll does), with TIMEOUT when the guest's timeout passes,
//   with RESEND when the debugger reset the link or the packet does not fit the guest's buffers;
//   RECEIVE of KD_POLL_BREAKIN is answered at once.
// - A reset while the guest is between calls goes to its next RECEIVE, as kdcom.dll would find the
//   RESET waiting on the line, unless the guest reports its state (a state change that reached the
//   debugger after the reset) first.
// - A SEND that asks for it gets the debugger's next packet with its answer, if one is waiting; if
//   none is, the answer waits for the end of the runner's turn (the packet usually arrives in the
//   same read as the acknowledgement, just after it), and no longer.
//
// Contracts:
// - Every guest call is answered exactly once while that guest is attached; nothing is answered
//   that was not asked, and nothing after guest_detached() (property tests and bridge_fuzz check
//   this).
// - Drain the events after each input: their spans are valid until the next call to any member.
// - No allocation per packet: the inbox's slots and the fast path's buffer are reserved at
//   construction for `max_body` (tests/bridge/bridge_core_allocation_test.cpp). A larger packet
//   (a debugger that negotiated more) grows its slot once.
// - Time never goes backwards between calls. Not thread-safe: one thread at a time.
#pragma once

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include "kdcom/bridge/events.hpp"
#include "kdcom/bridge/statistics.hpp"
#include "kdcom/endpoint/config.hpp"
#include "kdcom/error.hpp"
#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/status.hpp"
#include "kdcom/session/packet_queue.hpp"
#include "kdcom/shm/kd_pdu.hpp"
#include "kdcom/wire/constants.hpp"
#include "kdcom/wire/packet_type.hpp"

namespace kdcom::bridge {

struct core_config {
    // Answer DbgKdReadPhysicalMemoryApi requests from guest memory (read_guest_memory queries)
    // without waking the guest: the VMKD fast path.
    bool fast_path = false;
    std::size_t inbox_limit = 64;                      // debugger packets held for the guest at most
    std::size_t max_body = wire::default_max_body;     // the largest body: a fast-path reply, a held packet
};

class core {
public:
    explicit core(const core_config& config = {})
        : config_(config), inbox_(std::max<std::size_t>(config.inbox_limit, 1), config.max_body) {
        events_.reserve(8);
        fast_data_.reserve(fast_path_room());
    }

    // --- the guest ---

    // A guest connected; `max_message` is the largest message it accepts (a packet goes with a
    // SENT answer only if the whole answer fits). A guest still attached is forgotten first.
    void guest_attached(std::size_t max_message) {
        guest_detached(false);
        attached_ = true;
        max_message_ = max_message;
        ++stats_.guests_attached;
    }

    // The guest is gone (it closed, rebooted, or broke its ring; `misbehaved` counts the last):
    // its calls are void. Packets held for it stay for the next guest, as bytes on a serial line
    // would.
    void guest_detached(bool misbehaved) {
        if (!attached_) return;
        attached_ = false;
        if (misbehaved) ++stats_.guest_errors;
        if (send_.state == send_state::in_endpoint) push(bridge_events::cancel_guest_send{send_.id});
        send_ = {};
        receive_.reset();
        poll_.reset();
        reset_unreported_ = false;  // the next guest reports its state when it stops
    }

    // One call from the guest. A call that breaks the rules (an unknown operation, a second SEND
    // or RECEIVE while one is pending) returns errc::shm_malformed_pdu and detaches the guest:
    // the runner drops its connection.
    std::error_code guest_call(const shm::kd_pdu& call, timestamp now) {
        if (!attached_) return errc::shm_malformed_pdu;
        ++stats_.guest_calls;
        const std::error_code e = serve(call, now);
        if (e) guest_detached(true);
        return e;
    }

    // The answer to a poll_breakin query.
    void breakin_polled(bool pending) {
        if (!poll_) return;
        answer(status_answer(KDCOM_SHM_PDU_RECEIVED, wire::packet_type::poll_breakin, *poll_,
                             pending ? KDCOM_SHM_RECEIVE_OK : KDCOM_SHM_RECEIVE_TIMEOUT));
        poll_.reset();
    }

    // The answer to a read_guest_memory query: `count` bytes of `into` were read.
    void guest_memory_read(std::size_t count) {
        if (!std::exchange(fast_query_pending_, false)) return;
        const std::size_t wanted = fast_data_.size();
        const std::size_t got = std::min(count, wanted);
        // As the kernel answers: nothing read of something asked for is a failure.
        fast_request_.return_status = got > 0 || wanted == 0 ? kd::status::success : kd::status::unsuccessful;
        fast_request_.memory.actual_bytes = static_cast<std::uint32_t>(got);
        kd::encode_manipulate(fast_request_, fast_header_);
        ++stats_.fast_path_reads;
        push(bridge_events::send_to_debugger{wire::packet_type::state_manipulate, fast_header_,
                                             std::span<const std::uint8_t>(fast_data_).first(got), send_purpose::fast_path, 0});
    }

    // --- the debugger ---

    // The guest's send `id` ended: the debugger acknowledged it, or the endpoint gave up
    // (`acknowledged` false). Ends of sends that are not the current guest's are ignored.
    void guest_send_finished(std::uint64_t id, bool acknowledged) {
        if (send_.state != send_state::in_endpoint || id != send_.id) return;
        if (acknowledged) ++stats_.packets_to_debugger;
        // The debugger now knows the kernel's state: a reset before this needs no state change
        // again; a reset after it (reported before this, see debugger_reset) does.
        const bool reset_after = std::exchange(send_.reset_after_completion, false);
        if (acknowledged && send_.type == wire::packet_type::state_change64 && !reset_after) reset_unreported_ = false;
        send_.answer.status = acknowledged ? KDCOM_SHM_SEND_ACKNOWLEDGED : KDCOM_SHM_SEND_GAVE_UP;
        if (send_.takes_packet && inbox_.empty()) {
            send_.state = send_state::owed;  // the debugger's next packet may be in this very read
            return;
        }
        finish_send();
    }

    // A packet from the debugger. The runner stops reading the debugger while the inbox is full
    // (wants_debugger_packets()); a packet past the limit anyway is dropped and counted.
    void debugger_packet(wire::packet_type type, std::span<const std::uint8_t> body) {
        if (serve_from_guest_memory(type, body)) return;
        if (inbox_full()) {
            ++stats_.packets_dropped;
            return;
        }
        inbox_.push(type, 0, body);
        deliver();
        if (send_.state == send_state::owed) finish_send();  // with this packet
    }

    // The debugger reset the link: a new conversation. What the old one asked is void and the
    // kernel must report its state again. `endpoint_finished_guest_send`: the endpoint has
    // already completed the guest's send, but guest_send_finished() has not come yet (the reset
    // and the acknowledgement were in one read); the state that send reported went to the old
    // conversation.
    void debugger_reset(bool endpoint_finished_guest_send) {
        if (send_.state == send_state::in_endpoint && endpoint_finished_guest_send) send_.reset_after_completion = true;
        inbox_.clear();
        if (receive_) finish_receive(KDCOM_SHM_RECEIVE_RESEND);
        else reset_unreported_ = true;
    }

    bool wants_debugger_packets() const noexcept { return !inbox_full(); }
    std::size_t packets_held() const noexcept { return inbox_.size(); }

    // --- time and turns ---

    // A SENT answer waits for the end of the runner's turn: call end_of_turn() once every packet
    // that came in the same read has been given to the core.
    bool waits_for_turn_end() const noexcept { return send_.state == send_state::owed; }
    void end_of_turn() {
        if (send_.state == send_state::owed) finish_send();
    }

    void on_time(timestamp now) {
        if (receive_ && now >= receive_->expires) finish_receive(KDCOM_SHM_RECEIVE_TIMEOUT);
    }

    // When on_time() next has work to do: the guest's RECEIVE timing out.
    std::optional<timestamp> deadline() const {
        if (receive_) return receive_->expires;
        return std::nullopt;
    }

    std::optional<bridge_event> next_event() {
        if (next_ == events_.size()) {
            events_.clear();
            next_ = 0;
            return std::nullopt;
        }
        return events_[next_++];
    }

    bool guest_attached() const noexcept { return attached_; }
    const statistics& stats() const noexcept { return stats_; }
    const core_config& config() const noexcept { return config_; }

private:
    enum class send_state : std::uint8_t { none, in_endpoint, owed };

    struct guest_send {
        send_state state = send_state::none;
        std::uint64_t id = 0;
        wire::packet_type type{};
        bool takes_packet = false;
        bool reset_after_completion = false;
        shm::kd_pdu answer;  // SENT, its status set when the endpoint is done
    };

    struct pending_receive {
        std::uint16_t type;
        std::uint32_t sequence;
        std::uint16_t header_capacity, data_capacity;
        timestamp expires;
    };

    // Packets from the debugger waiting for the guest: a ring of slots whose buffers are reserved
    // at construction for the largest body, so holding a packet allocates nothing. A slot taken stays
    // untouched until the next push, which comes in a later input (the answer viewing it has been
    // handled by then).
    bool inbox_full() const noexcept { return inbox_.size() >= std::max<std::size_t>(config_.inbox_limit, 1); }

    static shm::kd_pdu status_answer(std::uint16_t operation, std::uint16_t type, std::uint32_t sequence,
                                     std::uint32_t status) {
        shm::kd_pdu a;
        a.operation = operation;
        a.packet_type = type;
        a.sequence = sequence;
        a.status = status;
        return a;
    }
    static shm::kd_pdu status_answer(std::uint16_t operation, wire::packet_type type, std::uint32_t sequence,
                                     std::uint32_t status) {
        return status_answer(operation, static_cast<std::uint16_t>(type), sequence, status);
    }

    std::error_code serve(const shm::kd_pdu& call, timestamp now) {
        switch (call.operation) {
        case KDCOM_SHM_PDU_SEND:
            if (send_.state != send_state::none) return errc::shm_malformed_pdu;  // KdSendPacket is not re-entrant
            send_.state = send_state::in_endpoint;
            send_.id = ++sends_started_;
            send_.type = static_cast<wire::packet_type>(call.packet_type);
            send_.takes_packet = (call.status & KDCOM_SHM_SEND_TAKES_PACKET) != 0;
            send_.reset_after_completion = false;
            send_.answer = status_answer(KDCOM_SHM_PDU_SENT, call.packet_type, call.sequence, 0);
            push(bridge_events::send_to_debugger{send_.type, call.header, call.data, send_purpose::guest, send_.id});
            return {};
        case KDCOM_SHM_PDU_RECEIVE:
            if (call.packet_type == static_cast<std::uint16_t>(wire::packet_type::poll_breakin)) {
                if (poll_) return errc::shm_malformed_pdu;
                poll_ = call.sequence;
                push(bridge_events::poll_breakin{});
                return {};
            }
            if (receive_) return errc::shm_malformed_pdu;  // KdReceivePacket is not re-entrant
            receive_ = pending_receive{call.packet_type, call.sequence, call.header_capacity, call.data_capacity,
                                       now + std::chrono::milliseconds(call.status)};
            if (std::exchange(reset_unreported_, false)) finish_receive(KDCOM_SHM_RECEIVE_RESEND);
            else deliver();
            return {};
        default: return errc::shm_malformed_pdu;  // answers travel the other way
        }
    }

    // Gives the pending RECEIVE the first waiting packet of its type; others are dropped, as
    // kdcom.dll drops what the kernel is not waiting for.
    void deliver() {
        while (receive_ && !inbox_.empty()) {
            const received_packet& p = inbox_.pop();
            if (static_cast<std::uint16_t>(p.type) != receive_->type) {
                ++stats_.packets_dropped;
                continue;
            }
            if (p.body.size() > std::size_t{receive_->header_capacity} + receive_->data_capacity) {
                finish_receive(KDCOM_SHM_RECEIVE_RESEND);
                return;
            }
            ++stats_.packets_to_guest;
            finish_receive(KDCOM_SHM_RECEIVE_OK, &p);
        }
    }

    void finish_receive(std::uint32_t status, const received_packet* p = nullptr) {
        const pending_receive r = *receive_;
        receive_.reset();
        shm::kd_pdu a = status_answer(KDCOM_SHM_PDU_RECEIVED, r.type, r.sequence, status);
        if (p) {
            const std::size_t header = std::min<std::size_t>(r.header_capacity, p->body.size());
            a.header = std::span(p->body).first(header);
            a.data = std::span(p->body).subspan(header);
        }
        if (status == KDCOM_SHM_RECEIVE_RESEND) ++stats_.resends_to_guest;
        answer(a);
    }

    // Answers the guest's SEND; with takes_packet, the debugger's next packet, if one is waiting
    // and fits, goes along and is the guest's to keep (layout.h).
    void finish_send() {
        shm::kd_pdu sent = send_.answer;
        const bool carry = send_.takes_packet && !inbox_.empty() &&
                           shm::kd_pdu_fixed_size + inbox_.front().body.size() <= max_message_;
        send_ = {};
        if (carry) {
            const received_packet& p = inbox_.pop();
            sent.status |= KDCOM_SHM_SENT_CARRIES_PACKET;
            sent.packet_type = static_cast<std::uint16_t>(p.type);
            sent.data = p.body;
            ++stats_.packets_to_guest;
            ++stats_.packets_carried;
        }
        answer(sent);
    }

    void answer(const shm::kd_pdu& a) {
        ++stats_.guest_answers;
        push(bridge_events::answer_guest{a});
    }

    std::size_t fast_path_room() const noexcept {
        return config_.max_body > kd::manipulate_header_size ? config_.max_body - kd::manipulate_header_size : 0;
    }

    // The fast path: a physical memory read answered by the host from guest memory.
    bool serve_from_guest_memory(wire::packet_type type, std::span<const std::uint8_t> body) {
        if (!config_.fast_path || type != wire::packet_type::state_manipulate) return false;
        const auto request = kd::decode_manipulate(body);
        if (!request || request->api != kd::manipulate_api::read_physical_memory) return false;
        fast_request_ = *request;
        fast_data_.resize(std::min<std::size_t>(request->memory.transfer_count, fast_path_room()));
        fast_query_pending_ = true;
        push(bridge_events::read_guest_memory{request->memory.address, fast_data_});
        return true;
    }

    void push(bridge_event e) { events_.push_back(std::move(e)); }

    core_config config_;
    statistics stats_;
    bool attached_ = false;
    std::size_t max_message_ = 0;
    guest_send send_;
    std::uint64_t sends_started_ = 0;
    std::optional<pending_receive> receive_;
    std::optional<std::uint32_t> poll_;  // a KD_POLL_BREAKIN receive's sequence, while its query is out
    bool reset_unreported_ = false;      // the debugger reset the link while the guest was not receiving
    packet_queue inbox_;  // packets held for the guest, oldest first
    kd::manipulate_header fast_request_;
    std::uint8_t fast_header_[kd::manipulate_header_size] = {};
    std::vector<std::uint8_t> fast_data_;
    bool fast_query_pending_ = false;
    std::vector<bridge_event> events_;
    std::size_t next_ = 0;
};

}  // namespace kdcom::bridge
