// The KDCOM reliability state machine, for either end of the link: packet ids, acknowledgements,
// resends, the reset handshake, retries and break-in. Sans-I/O: bytes, time and requests go in;
// events come out; it owns no socket, timer, thread or clock.
//
// Usage (every input takes the current time; drain the events after each input):
//
//     kdcom::endpoint ep({.role = kdcom::role::debugger});
//     ep.on_time(now);                      // a debugger starts its reset handshake here
//     while (auto e = ep.next_event()) handle(*e);       // write transmit bytes, etc.
//     ep.receive(bytes, now);               // bytes stay valid until next_event() returns nullopt
//     while (auto e = ep.next_event()) handle(*e);
//     ep.send(type, header, data, now);     // one send at a time: wait for send_completed
//     ...                                   // call on_time(now) when now >= *ep.deadline()
//
// The rules are those of docs/protocol.md ("The reliability layer"); each is covered by a scenario
// test in tests/endpoint/.
//
// Contracts:
// - Spans in events point into the endpoint (or the bytes given to receive()) and stay valid until
//   the next call to any member. Copy what must live longer.
// - Time must never go backwards between calls.
// - No allocation after construction in steady state: the decoder's frame buffer, the send buffer
//   and the event queue are allocated once. (The event queue grows only if a caller keeps
//   feeding inputs without draining events.)
// - Not thread-safe: one thread at a time.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <boost/endian/conversion.hpp>

#include "kdcom/decode/decoder.hpp"
#include "kdcom/endpoint/config.hpp"
#include "kdcom/endpoint/droppable.hpp"
#include "kdcom/endpoint/events.hpp"
#include "kdcom/error.hpp"
#include "kdcom/wire/constants.hpp"
#include "kdcom/wire/encoder.hpp"

namespace kdcom {

// Counters for tools and tests; they never affect behaviour.
struct endpoint_stats {
    std::uint64_t packets_sent = 0;         // data packets put on the wire the first time
    std::uint64_t retransmissions = 0;      // data packets put on the wire again
    std::uint64_t packets_received = 0;     // delivered
    std::uint64_t duplicates_received = 0;  // valid, acknowledged again, not delivered
    std::uint64_t acks_sent = 0, acks_received = 0;
    std::uint64_t resends_sent = 0, resends_received = 0;
    std::uint64_t resets_sent = 0, resets_received = 0, stale_resets_ignored = 0;
    std::uint64_t stale_resends_ignored = 0;  // RESENDs that came too soon to concern our packet
    std::uint64_t resets_presumed_lost = 0;   // debugger: RESETs repeated with earlier ones unanswered
    std::uint64_t timeouts = 0;  // retransmissions because an ACK timeout passed
    std::uint64_t framing_errors = 0;
    std::uint64_t bytes_sent = 0, bytes_received = 0, bytes_discarded = 0;
    std::uint64_t breakins = 0;  // break-ins sent (debugger) or honoured (target)
};

class endpoint {
public:
    explicit endpoint(const endpoint_config& config = {})
        : config_(config),
          decoder_(decode::options{std::min(config.max_body, wire::byte_count_limit)}),
          frame_(std::make_unique<std::uint8_t[]>(wire::data_packet_size(decoder_.max_body()))) {
        // A booting target announces itself with SYNC; a debugger starts plain.
        next_id_ = wire::initial_packet_id | (config.role == role::target ? wire::sync_packet_id : 0);
        rto_ = clamp_timeout(config.ack_timeout);
        queue_.reserve(32);
    }

    const endpoint_config& config() const noexcept { return config_; }
    const endpoint_stats& stats() const noexcept { return stats_; }

    // ---- Inputs ----------------------------------------------------------------------------

    // Bytes from the peer. Precondition: the previous input's events were drained (next_event()
    // returned nullopt). The bytes must stay valid until then.
    void receive(std::span<const std::uint8_t> bytes, timestamp now) {
        advance(now);
        if (bytes.empty()) return;
        stats_.bytes_received += bytes.size();
        last_rx_ = now;
        resend_budget_ = 1;
        input_offset_ = decoder_.stream_offset();
        input_ = bytes;
        if (breakin_undecided_) decide_breakin(bytes[0]);
        decoder_.push(bytes);
    }
    // The bytes must outlive the events: a temporary vector would not.
    template <class Allocator>
    void receive(std::vector<std::uint8_t, Allocator>&&, timestamp) = delete;

    // Forgets input that belongs to a stream that is gone (a half-read frame, bytes not yet
    // decoded), so that the next stream's bytes do not join it. Call between streams, after the
    // previous input's events were drained. A target also forgets the RESET it answered last: a
    // new stream cannot carry stale repeats of it, so the new peer's RESET is answered at once even
    // if it uses the same id (as every WinDbg does).
    void discard_input() {
        stats_.bytes_discarded += decoder_.discard_input();
        breakin_undecided_ = false;
        input_ = {};
        answered_reset_ = false;
    }

    // The passage of time: runs whatever timers are due (retransmission, RESET repeats, a packet
    // whose bytes stopped arriving). Call it at or after deadline().
    void on_time(timestamp now) {
        advance(now);
        resend_budget_ = 1;
        if (reset_deadline_ && now >= *reset_deadline_) {
            if (++resets_sent_ >= config_.initial_retries) set_link(events::link_state::peer_silent);
            // A whole interval without the last answer: the earlier RESETs are taken for lost. If
            // one was only slow, its late answer may end this handshake early (see on_reset_answer).
            if (std::exchange(resets_unanswered_, 0) > 0) ++stats_.resets_presumed_lost;
            send_reset_packet();
        }
        if (ack_deadline_ && now >= *ack_deadline_) {
            ++stats_.timeouts;
            attempt_timeout_ = std::min(attempt_timeout_ * 2, config_.ack_timeout_max);  // back off
            retransmit_or_give_up();
        }
        if (decoder_.buffered() > 0 && now >= last_rx_ + config_.read_timeout) decoder_.finish();
    }

    // Starts sending one data packet whose body is `header` followed by `data` (the two buffers
    // of KdSendPacket). Completion is reported by a send_completed event. Errors, with nothing
    // sent: send_in_progress, not_a_data_type, body_too_large (over config().max_body).
    std::error_code send(wire::packet_type type, std::span<const std::uint8_t> header,
                         std::span<const std::uint8_t> data, timestamp now) {
        advance(now);
        if (sending_) return errc::send_in_progress;
        if (!wire::is_data_type(type)) return errc::not_a_data_type;
        if (header.size() + data.size() > decoder_.max_body()) return errc::body_too_large;
        std::error_code ec;
        frame_size_ = wire::encode_data_packet(
            std::span(frame_.get(), wire::data_packet_size(decoder_.max_body())), type, next_id_,
            header, data, ec);
        if (ec) return ec;
        sending_ = true;
        send_type_ = type;
        const auto body = std::span<const std::uint8_t>(frame_.get() + wire::header_size,
                                                        frame_size_ - wire::data_packet_size(0));
        send_droppable_ = is_droppable(type, body, config_.trace_io_droppable);
        attempts_ = 0;
        transmissions_ = 0;
        reported_silent_ = false;
        delivered_frame_resendable_ = false;
        attempt_timeout_ = rto_;
        if (!handshake_pending_) transmit_frame();  // else sent when the handshake completes
        return {};
    }

    // Abandons the send in progress (send_completed: cancelled). Whether the peer got it cannot be
    // known, so the ids restart: a debugger runs the reset handshake (unless resets are off: then
    // its ids stay as they are, and the next send may be taken as a repeat of this one); a target
    // restarts its ids with SYNC as it does at boot (see docs/protocol.md on what each guarantees).
    void cancel_send(timestamp now) {
        advance(now);
        if (!sending_) return;
        finish_send(events::send_completed::outcome::cancelled);
        if (config_.role == role::target) restart_ids_with_sync();
        else if (config_.send_resets) begin_handshake();
    }

    // Debugger: asks a running target to stop (the single byte 'b').
    void send_breakin(timestamp now) {
        advance(now);
        events::transmit t;
        t.kind = events::transmit::what::breakin;
        t.small[0] = wire::breakin_byte;
        t.small_size = 1;
        ++stats_.breakins;
        queue_transmit(t);
    }

    // Debugger: starts a reset handshake (RESET every reset_interval until the target answers;
    // a send in progress waits for it, then goes out with the initial id). It runs even with
    // send_resets off: the caller asked for it. The endpoint's first input starts one by itself
    // (with send_resets): a call at that same moment does not send a second RESET.
    // Target: restarts both ids the way a booting target does; the next packet carries SYNC.
    void start_reset(timestamp now) {
        const bool first_input = !started_;
        advance(now);
        if (config_.role == role::target) restart_ids_with_sync();
        else if (!(first_input && handshake_pending_)) begin_handshake();
    }

    // Target: whether a break-in arrived since the last poll (the kernel's KD_POLL_BREAKIN).
    // Clears it. Never waits.
    bool poll_breakin() {
        if (breakin_undecided_) confirm_breakin();  // nothing followed the 'b' yet
        return std::exchange(breakin_pending_, false);
    }

    // ---- Outputs ---------------------------------------------------------------------------

    // The next event, or nullopt when the last input has been fully handled.
    std::optional<endpoint_event> next_event() {
        while (queue_head_ == queue_.size()) {
            queue_.clear();
            queue_head_ = 0;
            auto e = decoder_.next();
            if (!e) {
                input_ = {};
                return std::nullopt;
            }
            handle(*e);
        }
        return std::move(queue_[queue_head_++]);
    }

    // When on_time() next has work to do, if ever.
    std::optional<timestamp> deadline() const {
        const bool first_reset_due = !started_ && config_.role == role::debugger && config_.send_resets;
        return earliest({first_reset_due ? std::optional(timestamp{}) : std::nullopt, reset_deadline_, ack_deadline_,
                         decoder_.buffered() > 0 ? std::optional(last_rx_ + config_.read_timeout) : std::nullopt});
    }

    // Bytes of heap the endpoint holds: its decoder's frame buffer, its send buffer and its event
    // queue. Constant in steady state (tests assert it never grows).
    std::size_t memory_in_use() const noexcept {
        return decoder_.max_frame_size() + wire::data_packet_size(decoder_.max_body()) +
               queue_.capacity() * sizeof(endpoint_event);
    }

    bool send_in_progress() const noexcept { return sending_; }
    bool handshake_pending() const noexcept { return handshake_pending_; }
    events::link_state link() const noexcept { return link_; }

private:
    static constexpr std::uint32_t id_mask = ~wire::sync_packet_id;
    static constexpr std::uint32_t continue_api = 0x3136, continue2_api = 0x313C;  // DbgKdContinueApi(2)

    // ---- Time and start-up -----------------------------------------------------------------

    void advance(timestamp now) {
        assert(now >= now_ && "time went backwards");
        now_ = std::max(now_, now);
        if (!started_) {
            started_ = true;
            if (config_.role == role::debugger && config_.send_resets) begin_handshake();
        }
    }

    // ---- Decoder events --------------------------------------------------------------------

    void handle(const decode::event& e) {
        if (const auto* p = std::get_if<decode::data_packet>(&e)) on_data(*p);
        else if (const auto* c = std::get_if<decode::control_packet>(&e)) on_control(*c);
        else if (const auto* b = std::get_if<decode::breakin>(&e)) on_breakin(b->offset);
        else if (const auto* f = std::get_if<decode::framing_error>(&e)) on_framing_error(*f);
    }

    void on_framing_error(const decode::framing_error& f) {
        ++stats_.framing_errors;
        // A damaged or cut-off data packet is asked for again; a damaged control packet is
        // ignored (its sender's timer covers it), as Windows does.
        if (f.leader_byte == wire::data_leader_byte) request_resend();
    }

    void on_data(const decode::data_packet& p) {
        if (handshake_pending_) {
            // Not taken: the target sends it again after answering our RESET. But it is waiting
            // for an ACK now, the moment when even a target that reads nothing while it runs
            // (ReactOS) reads a RESET: send one at once. The RESETs before it were sent to a
            // running target, whose break-in poll (Windows' and ReactOS's alike) reads and drops
            // every byte that is not a break-in: they are taken for lost, so that the answer to
            // this one ends the handshake. Counting them would wait for answers that never come,
            // and with the target's resends and our repeats both a second apart, for ever.
            if (now_ >= last_reset_sent_ + config_.reset_on_data_interval) {
                if (std::exchange(resets_unanswered_, 0) > 0) ++stats_.resets_presumed_lost;
                send_reset_packet();
            }
            return;
        }
        const std::uint32_t id = p.header.id & id_mask;
        if (id != wire::initial_packet_id && id != (wire::initial_packet_id | 1)) {
            request_resend();
            return;
        }
        progress_since_reset_ = true;
        peer_heard();
        const bool sync = (p.header.id & wire::sync_packet_id) != 0;
        const fingerprint fp{p.header.type, id, p.header.byte_count, p.header.checksum};
        if (std::exchange(peer_restarted_ids_, false)) {
            const bool repeat = have_last_delivered_ && same_content(fp, last_delivered_);
            expected_id_ = repeat ? id ^ 1 : id;
            fresh_ = false;
        }
        if (sync && !(have_last_delivered_ && fp == last_delivered_)) {
            // SYNC on a packet that is not a retransmission of the last one we took: the peer
            // restarted or resynchronised. Take this packet whatever we expected. If we had heard
            // from this peer before without SYNC, it restarted since and expects the initial id
            // from us: ours restarts too. (On first contact there is nothing to resynchronise:
            // what we sent before went to this same peer.)
            expected_id_ = id;
            if (!last_had_sync_ && !fresh_) {
                queue(events::peer_reset{events::peer_reset::cause::sync_bit});
                next_id_ = wire::initial_packet_id | (next_id_ & wire::sync_packet_id);
                if (sending_ && !handshake_pending_) transmit_frame();
            }
        } else if (fresh_) {
            expected_id_ = id;  // nothing received since start: any valid id begins the stream
        }
        last_had_sync_ = sync;
        fresh_ = false;

        send_control(wire::packet_type::acknowledge, id);
        ++stats_.acks_sent;
        set_link(events::link_state::connected);
        if (id != expected_id_) {
            // The other id: the packet we took last, sent again because our ACK was lost, if it
            // is that packet; acknowledged again so the sender moves on. A different packet
            // with that id comes from a peer that restarted its ids without telling us (a
            // debugger attaching again with resets=0, kdd): taken.
            if (have_last_delivered_ && same_content(fp, last_delivered_)) {
                ++stats_.duplicates_received;
                return;
            }
            expected_id_ = id;
        }
        if (sending_ && ack_deadline_ && config_.implicit_ack && proves_delivery(p)) {
            finish_send(events::send_completed::outcome::acknowledged);
            delivered_frame_resendable_ = true;
        }
        expected_id_ ^= 1;
        last_delivered_ = fp;
        have_last_delivered_ = true;
        ++stats_.packets_received;
        queue(events::packet_received{p.header.type, p.header.id, p.body});
    }

    void on_control(const decode::control_packet& c) {
        switch (c.header.type) {
        case wire::packet_type::acknowledge:
            ++stats_.acks_received;
            peer_heard();
            // Either form of the id: Windows-style senders echo it without SYNC, ReactOS with.
            if (sending_ && ack_deadline_ && (c.header.id & id_mask) == (next_id_ & id_mask)) {
                progress_since_reset_ = true;
                if (transmissions_ == 1) sample_round_trip(now_ - first_transmit_at_);  // Karn
                finish_send(events::send_completed::outcome::acknowledged);
            }
            break;
        case wire::packet_type::resend:
            ++stats_.resends_received;
            peer_heard();
            if (sending_ && ack_deadline_ && resend_predates_transmission()) ++stats_.stale_resends_ignored;
            else if (sending_ && ack_deadline_) retransmit_or_give_up();
            else if (std::exchange(delivered_frame_resendable_, false)) retransmit_delivered_frame();
            break;
        case wire::packet_type::reset:
            ++stats_.resets_received;
            peer_heard();
            if (config_.role == role::target) answer_reset(c.header.id);
            else on_reset_answer();
            break;
        default: break;
        }
    }

    // ---- Break-in --------------------------------------------------------------------------

    void on_breakin(std::uint64_t offset) {
        if (config_.role != role::target) return;
        if (!config_.strict_breakin) {
            confirm_breakin();
            return;
        }
        // Honoured only if a leader byte, another 'b' or nothing follows it.
        const std::uint64_t next = offset + 1;
        if (next < input_offset_) confirm_breakin();  // only in a rescan of older bytes
        else if (next < input_offset_ + input_.size()) decide_breakin(input_[next - input_offset_]);
        else breakin_undecided_ = true;
    }

    void decide_breakin(std::uint8_t next_byte) {
        breakin_undecided_ = false;
        if (next_byte == wire::data_leader_byte || next_byte == wire::control_leader_byte ||
            next_byte == wire::breakin_byte)
            confirm_breakin();
    }

    void confirm_breakin() {
        breakin_undecided_ = false;
        if (breakin_pending_) return;
        breakin_pending_ = true;
        ++stats_.breakins;
        queue(events::breakin_pending{});
    }

    // ---- Sending ---------------------------------------------------------------------------

    unsigned retry_limit() const noexcept {
        return contacted_ ? config_.retries : config_.initial_retries;
    }

    // Puts the pending frame on the wire with the current id.
    void transmit_frame() {
        boost::endian::store_little_u32(frame_.get() + 8, next_id_);
        if (transmissions_ == 0) first_transmit_at_ = now_;
        last_transmit_at_ = now_;
        events::transmit t;
        t.kind = events::transmit::what::data_packet;
        t.type = send_type_;
        t.retransmission = transmissions_ > 0;
        t.frame = std::span<const std::uint8_t>(frame_.get(), frame_size_);
        ++(transmissions_ > 0 ? stats_.retransmissions : stats_.packets_sent);
        ++transmissions_;
        ++attempts_;
        ack_deadline_ = now_ + attempt_timeout_;
        queue_transmit(t);
    }

    // The peer asked again for a packet we took as delivered because it answered it: send it
    // again, unchanged. A receiver that had it takes the copy for a repeat and acknowledges it.
    void retransmit_delivered_frame() {
        events::transmit t;
        t.kind = events::transmit::what::data_packet;
        t.type = send_type_;
        t.retransmission = true;
        t.frame = std::span<const std::uint8_t>(frame_.get(), frame_size_);
        ++stats_.retransmissions;
        queue_transmit(t);
    }

    // Whether the peer's data packet shows that it got ours (implicit acknowledgement). A debugger
    // only sends in answer, so to a target any packet from it does. A target sends state changes
    // and prints on its own, so to a debugger only the reply to its request does.
    // A Continue has no reply: the target runs, and the next thing it reports is a stop, which
    // therefore proves the Continue arrived.
    bool proves_delivery(const decode::data_packet& p) const noexcept {
        if (config_.role == role::target) return true;
        const std::size_t body_size = frame_size_ - wire::data_packet_size(0);
        if (send_type_ != wire::packet_type::state_manipulate || body_size < 4) return false;
        const std::uint32_t api = boost::endian::load_little_u32(frame_.get() + wire::header_size);
        if (p.header.type == wire::packet_type::state_change64 || p.header.type == wire::packet_type::state_change32)
            return api == continue_api || api == continue2_api;
        return p.header.type == wire::packet_type::state_manipulate && p.body.size() >= 4 &&
               boost::endian::load_little_u32(p.body.data()) == api;
    }

    // Whether a RESEND was sent before our last transmission could have reached the peer, so that
    // it asks for something else: it arrived less than half a round trip after that transmission.
    // ReactOS answers a stale duplicate of our packet, read while it awaits the ACK of its own,
    // with RESEND; obeying would send a new duplicate into the same trap, request after request.
    // Ignoring a RESEND costs at most one ACK timeout.
    bool resend_predates_transmission() const noexcept {
        return have_rtt_ && now_ - last_transmit_at_ < srtt_ / 2;
    }

    // Any valid packet from the peer: it is there, so a droppable send starts its count again.
    void peer_heard() noexcept {
        if (sending_ && send_droppable_) attempts_ = 0;
    }

    // RFC 6298's estimator, on ACKs of packets sent once.
    void sample_round_trip(timestamp sample) noexcept {
        if (!have_rtt_) {
            srtt_ = sample;
            rttvar_ = sample / 2;
            have_rtt_ = true;
        } else {
            const timestamp error = srtt_ > sample ? srtt_ - sample : sample - srtt_;
            rttvar_ = (3 * rttvar_ + error) / 4;
            srtt_ = (7 * srtt_ + sample) / 8;
        }
        rto_ = clamp_timeout(srtt_ + 4 * rttvar_);
    }

    timestamp clamp_timeout(timestamp t) const noexcept {
        return std::clamp(t, config_.ack_timeout_min, std::max(config_.ack_timeout_min, config_.ack_timeout_max));
    }

    void retransmit_or_give_up() {
        if (attempts_ >= retry_limit()) {
            if (send_droppable_) {
                give_up();
                return;
            }
            if (!reported_silent_) {
                reported_silent_ = true;
                set_link(events::link_state::peer_silent);
            }
        }
        transmit_frame();
    }

    // A droppable send ran out of retries: the target concludes no debugger is there and starts
    // over as if it had just booted.
    void give_up() {
        finish_send(events::send_completed::outcome::given_up);
        restart_ids_with_sync();
        contacted_ = false;
        set_link(config_.role == role::target ? events::link_state::debugger_not_present
                                              : events::link_state::peer_silent);
    }

    void finish_send(events::send_completed::outcome outcome) {
        if (outcome == events::send_completed::outcome::acknowledged) {
            next_id_ = (next_id_ ^ 1) & id_mask;  // SYNC is cleared after the first ACK
            contacted_ = true;
            set_link(events::link_state::connected);
        }
        sending_ = false;
        ack_deadline_.reset();
        queue(events::send_completed{outcome, send_type_, transmissions_});
    }

    // Starts over as a booting target does: our next packet carries INITIAL|SYNC, and we take the
    // peer's next valid packet whatever its id. Windows expects INITIAL here, which is what a peer
    // that saw our SYNC sends; but if our SYNC packet is a retransmission of one the peer already
    // took, the peer rightly does not resync, and insisting on INITIAL would drop its next packet.
    void restart_ids_with_sync() {
        next_id_ = wire::initial_packet_id | wire::sync_packet_id;
        fresh_ = true;
        if (sending_ && !handshake_pending_) transmit_frame();
    }

    // ---- Reset handshake -------------------------------------------------------------------

    // Starts a handshake, or (if one is pending) sends its RESET again.
    void begin_handshake() {
        if (!handshake_pending_) {
            handshake_pending_ = true;
            resets_sent_ = 0;
        }
        ack_deadline_.reset();  // a send in progress waits for the handshake
        send_reset_packet();
    }

    void send_reset_packet() {
        send_control(wire::packet_type::reset, config_.reset_id);
        ++resets_unanswered_;
        ++stats_.resets_sent;
        last_reset_sent_ = now_;
        reset_deadline_ = now_ + config_.reset_interval;
    }

    // Debugger: a RESET from the target. Its id tells nothing (targets answer with 0, 0xDEADBEEF,
    // the id we sent, or stack garbage), and every RESET we sent carries the same one, so answers
    // are matched to our RESETs by counting: the link keeps order, and the answer to the last one
    // we sent is the last to come. Only that one ends the handshake. Ending it on an earlier one
    // would let the target, reading our later RESETs after what we send next, restart its ids
    // behind our ACKs and take them for ACKs of its new packets. A RESET or an answer lost leaves
    // the count too high: the next repeat, a whole reset_interval later, starts it over; if the
    // earlier RESET was only slow, not lost, its answer can then end the handshake early and the
    // hazard above returns (stats().resets_presumed_lost counts the occasions). Without ids there
    // is no telling a slow answer from the last one; a debugger's reply timeout recovers.
    // Outside a handshake a RESET is not answered (answering is how RESETs bounce for ever): it
    // is a late answer to one we repeated, or a duplicate. The target restarted its ids for it,
    // so its next packet is taken whatever its id, unless it is the packet we took last, sent
    // again after the RESET.
    void on_reset_answer() {
        if (resets_unanswered_ > 0) --resets_unanswered_;
        if (!handshake_pending_) peer_restarted_ids_ = true;
        else if (resets_unanswered_ == 0) complete_handshake();
    }

    // Debugger: the target answered our last RESET.
    void complete_handshake() {
        handshake_pending_ = false;
        reset_deadline_.reset();
        reset_ids();
        queue(events::peer_reset{events::peer_reset::cause::reset_packet});
        set_link(events::link_state::connected);
        if (sending_) {
            attempts_ = 0;
            transmit_frame();
        }
    }

    // Target: the debugger asks for a reset.
    void answer_reset(std::uint32_t reset_id) {
        const bool stale = answered_reset_ && reset_id == last_reset_id_ && progress_since_reset_ &&
                           now_ - last_reset_time_ < config_.stale_reset_window;
        if (stale) {
            ++stats_.stale_resets_ignored;
            return;
        }
        answered_reset_ = true;
        last_reset_id_ = reset_id;
        last_reset_time_ = now_;
        progress_since_reset_ = false;
        send_control(wire::packet_type::reset, reset_id);  // echoing the id costs nothing
        ++stats_.resets_sent;
        reset_ids();
        if (config_.drop_input_on_reset) stats_.bytes_discarded += decoder_.discard_input();
        breakin_undecided_ = false;
        queue(events::peer_reset{events::peer_reset::cause::reset_packet});
        set_link(events::link_state::connected);
        if (sending_) {
            attempts_ = 0;
            transmit_frame();
        }
    }

    // After a RESET both sides restart at the initial id. Our next send uses it; the peer's next
    // packet is taken whatever its id, since not every peer restarts (Xen's kdd carries on with
    // its own count; pykdclient copies the id it last received).
    void reset_ids() {
        next_id_ = wire::initial_packet_id;
        expected_id_ = wire::initial_packet_id;
        fresh_ = true;
        last_had_sync_ = false;
        have_last_delivered_ = false;
    }

    // ---- Output helpers --------------------------------------------------------------------

    void request_resend() {
        if (resend_budget_ == 0) return;  // one per input: a burst of damage needs only one
        --resend_budget_;
        send_control(wire::packet_type::resend, 0);
        ++stats_.resends_sent;
    }

    void send_control(wire::packet_type type, std::uint32_t id) {
        events::transmit t;
        t.kind = events::transmit::what::control_packet;
        t.type = type;
        std::error_code ec;
        t.small_size = static_cast<std::uint8_t>(wire::encode_control_packet(t.small, type, id, ec));
        queue_transmit(t);
    }

    void queue_transmit(const events::transmit& t) {
        stats_.bytes_sent += t.bytes().size();
        queue(t);
    }

    void set_link(events::link_state state) {
        if (link_ == state) return;
        link_ = state;
        queue(events::link_changed{state});
    }

    void queue(endpoint_event e) { queue_.push_back(std::move(e)); }

    // What identifies a packet well enough to recognise its retransmission.
    struct fingerprint {
        wire::packet_type type{};
        std::uint32_t id = 0;
        std::uint16_t byte_count = 0;
        std::uint32_t checksum = 0;
        friend bool operator==(const fingerprint&, const fingerprint&) = default;
    };
    // The same packet, whatever id it was sent with.
    static bool same_content(const fingerprint& a, const fingerprint& b) noexcept {
        return a.type == b.type && a.byte_count == b.byte_count && a.checksum == b.checksum;
    }

    endpoint_config config_;
    decode::decoder decoder_;
    endpoint_stats stats_;
    timestamp now_{};
    bool started_ = false;

    // Input being decoded (for the break-in rule, which looks at the byte after a 'b').
    std::span<const std::uint8_t> input_;
    std::uint64_t input_offset_ = 0;
    timestamp last_rx_{};
    unsigned resend_budget_ = 1;

    // Sending: one packet at a time (stop-and-wait).
    std::unique_ptr<std::uint8_t[]> frame_;
    std::size_t frame_size_ = 0;
    bool sending_ = false;
    wire::packet_type send_type_ = wire::packet_type::unused;
    bool send_droppable_ = false;
    unsigned attempts_ = 0;       // toward the retry limit; a reset starts the count again
    unsigned transmissions_ = 0;  // times this packet went on the wire, resets included
    bool reported_silent_ = false;
    std::optional<timestamp> ack_deadline_;  // set while a sent packet awaits its ACK
    timestamp first_transmit_at_{}, last_transmit_at_{};
    // The last send was taken as delivered because the peer answered it; a RESEND may still ask
    // for it once.
    bool delivered_frame_resendable_ = false;

    // Retransmission timer (RFC 6298): rto_ for a new packet, attempt_timeout_ for the current
    // attempt (doubled on each timeout).
    timestamp rto_{};
    timestamp attempt_timeout_{};
    timestamp srtt_{}, rttvar_{};
    bool have_rtt_ = false;
    std::uint32_t next_id_ = wire::initial_packet_id;
    bool contacted_ = false;  // a packet of ours was acknowledged since start or the last give-up

    // Receiving.
    std::uint32_t expected_id_ = wire::initial_packet_id;
    bool fresh_ = true;  // nothing received since start or since a reset: any valid id is taken
    bool peer_restarted_ids_ = false;  // debugger: the target answered a RESET we were not waiting for
    bool last_had_sync_ = false;
    fingerprint last_delivered_;
    bool have_last_delivered_ = false;

    // Reset handshake, debugger side.
    bool handshake_pending_ = false;
    unsigned resets_sent_ = 0;  // repeats for want of an answer
    unsigned resets_unanswered_ = 0;  // RESETs sent whose answers have not come
    timestamp last_reset_sent_{};
    std::optional<timestamp> reset_deadline_;

    // Reset handshake, target side.
    bool answered_reset_ = false;
    std::uint32_t last_reset_id_ = 0;
    timestamp last_reset_time_{};
    bool progress_since_reset_ = false;

    // Break-in, target side.
    bool breakin_pending_ = false;
    bool breakin_undecided_ = false;

    events::link_state link_ = events::link_state::waiting;

    std::vector<endpoint_event> queue_;
    std::size_t queue_head_ = 0;
};

}  // namespace kdcom
