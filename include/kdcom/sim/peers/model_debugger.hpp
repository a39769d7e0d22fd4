// Models of debuggers nobody here wrote (WinDbg/kd, pykdclient, radare2's winkd), written from
// their documented behaviour, each running the same debugging_session as kdcom's own debugger.
// They differ in how they reset, number, acknowledge and repeat packets:
// - WinDbg: RESET with one constant id about once a second until answered (none with
//   `resets=0`), retransmits on timeout and on RESEND, takes any new packet from the target as
//   the ACK of its own,
//   asks with RESEND for a packet whose id is not one of the two in use, resynchronises on a
//   packet with SYNC, repeats a break-in while the target does not stop, does not answer RESETs.
// - pykdclient: one RESET with id 0x8080, never retransmits and has no timeouts, copies the id
//   of the last packet it received (with SYNC set) onto its next data packet, takes any ACK,
//   delivers every packet (no duplicate detection); on Python 3 its ACKs and RESETs are 18 bytes
//   (Checksum 0x000080C2 and two zero bytes after the header).
// - radare2: a break-in byte, then RESET id 0, then waits for the RESET and the first stop.
// Framing is read with kdcom's decoder: these debuggers' readers are not where they differ.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kdcom/decode/decoder.hpp"
#include "kdcom/sim/debugging_session.hpp"
#include "kdcom/sim/node.hpp"
#include "kdcom/sim/peers/frames.hpp"

namespace kdcom::sim::peers {

struct debugger_behaviour {
    bool sends_resets = true;             // false: WinDbg's resets=0
    std::uint32_t reset_id = 0;
    bool repeats_resets = true;           // about once a second until answered
    bool breakin_before_reset = false;
    bool retransmits = true;              // on ACK timeout and on RESEND
    std::chrono::nanoseconds ack_timeout = std::chrono::seconds(1);
    std::chrono::nanoseconds reset_interval = std::chrono::seconds(1);
    std::chrono::nanoseconds breakin_interval = std::chrono::seconds(1);  // 0: one break-in only
    bool copies_received_id = false;      // next data id = last received id, SYNC set
    bool checks_ack_ids = true;
    bool any_packet_acknowledges = true;  // a new packet from the target completes our send
    bool detects_duplicates = true;
    bool python3_control_packets = false;  // 18-byte ACKs and RESETs
};

inline debugger_behaviour windbg() { return {.reset_id = 0x0005F863}; }
inline debugger_behaviour windbg_resets_off() { return {.sends_resets = false}; }
inline debugger_behaviour pykdclient() {
    return {.reset_id = 0x00008080, .repeats_resets = false, .retransmits = false,
            .breakin_interval = std::chrono::nanoseconds(0), .copies_received_id = true,
            .checks_ack_ids = false, .any_packet_acknowledges = false, .detects_duplicates = false, .python3_control_packets = true};
}
inline debugger_behaviour radare2() { return {.reset_id = 0, .breakin_before_reset = true}; }

class model_debugger final : public node {
public:
    model_debugger(const debugger_behaviour& behaviour, const session_plan& plan)
        : b_(behaviour), session_(plan) {}

    void start(timestamp now) override {
        if (b_.breakin_before_reset || session_.wants_breakin()) break_in(now);
        if (b_.sends_resets) {
            handshake_pending_ = true;
            send_reset(now);
        }
        pump(now);
    }

    void receive(std::span<const std::uint8_t> bytes, timestamp now) override {
        decoder_.push(bytes);
        while (auto e = decoder_.next()) {
            if (const auto* c = std::get_if<decode::control_packet>(&*e)) on_control(c->header, now);
            else if (const auto* p = std::get_if<decode::data_packet>(&*e)) on_data(p->header, p->body);
        }
        pump(now);
    }

    void on_time(timestamp now) override {
        if (reset_due_ && now >= *reset_due_) send_reset(now);
        if (ack_due_ && now >= *ack_due_) {
            ack_due_.reset();
            if (b_.retransmits) transmit(now);
        }
        if (breakin_due_ && now >= *breakin_due_) {
            breakin_due_.reset();
            if (session_.wants_breakin()) break_in(now);
        }
        pump(now);
    }

    std::optional<timestamp> deadline() const override {
        return earliest({reset_due_, ack_due_, breakin_due_});
    }

    const debugging_session& session() const noexcept { return session_; }
    std::size_t retransmissions() const noexcept { return retransmissions_; }

    // If this debugger is stuck in a way its own design makes permanent, why; else empty.
    std::string stuck_by_design() const {
        if (handshake_pending_ && !b_.repeats_resets) return "it sent one RESET and never repeats it";
        if (sending_ && !b_.retransmits) return "it never retransmits a request";
        if (session_.waiting_for_stop() && b_.breakin_interval == std::chrono::nanoseconds(0) && session_.wants_breakin())
            return "it sends one break-in and never repeats it";
        return {};
    }

private:
    void on_control(const wire::packet_header& h, timestamp now) {
        switch (h.type) {
        case wire::packet_type::reset:
            if (!handshake_pending_) return;  // not answered: answering is how RESETs bounce
            handshake_pending_ = false;
            reset_due_.reset();
            next_id_ = wire::initial_packet_id;
            fresh_ = true;
            if (sending_) transmit(now);  // again, with the initial id
            return;
        case wire::packet_type::acknowledge:
            if (!sending_) return;
            if (b_.checks_ack_ids && (h.id & ~wire::sync_packet_id) != (sent_id_ & ~wire::sync_packet_id)) return;
            delivered();
            return;
        case wire::packet_type::resend:
            if (sending_ && b_.retransmits) transmit(now);
            return;
        default: return;
        }
    }

    void on_data(const wire::packet_header& h, std::span<const std::uint8_t> body) {
        if (handshake_pending_) return;  // the target sends it again once it has answered
        const std::uint32_t id = h.id & ~wire::sync_packet_id;
        if ((id & ~1u) != wire::initial_packet_id) {  // an id no sender uses: damaged
            write_control(wire::packet_type::resend, 0);
            return;
        }
        write_control(wire::packet_type::acknowledge, b_.copies_received_id ? h.id : id);
        const bool sync_restart = (h.id & wire::sync_packet_id) && !(h.id == last_id_ && h.checksum == last_checksum_);
        if (b_.detects_duplicates && !fresh_ && id != expected_id_ && !sync_restart) return;  // a repeat
        fresh_ = false;
        expected_id_ = id ^ 1;
        last_id_ = h.id;
        last_checksum_ = h.checksum;
        const bool was_sending = sending_;
        const bool answers = session_.on_packet(h.type, body);
        // The reply is an ACK too; WinDbg (like the NT debugger's packet.c) takes any new packet so.
        if (was_sending && answers) delivered(false);
        else if (was_sending && b_.any_packet_acknowledges) delivered();
    }

    // The request in flight was acknowledged; `tell_session` is false when its reply said so (the
    // session has moved on to the next request already).
    void delivered(bool tell_session = true) {
        sending_ = false;
        ack_due_.reset();
        next_id_ ^= 1;
        if (tell_session) session_.on_request_delivered();
    }

    // Starts the session's next request, and break-ins it waits for.
    void pump(timestamp now) {
        if (session_.wants_breakin() && !breakin_due_ && !breakin_sent_for_stop_) break_in(now);
        if (!session_.waiting_for_stop()) breakin_sent_for_stop_ = false;
        if (!session_.request() || session_.requests_issued() == started_ || sending_) return;
        started_ = session_.requests_issued();
        request_ = *session_.request();
        sending_ = true;
        first_transmission_ = true;
        if (!handshake_pending_) transmit(now);
    }

    void transmit(timestamp now) {
        if (!first_transmission_) ++retransmissions_;
        first_transmission_ = false;
        sent_id_ = b_.copies_received_id ? (last_id_ | wire::sync_packet_id) : next_id_;
        write(data_frame(wire::packet_type::state_manipulate, sent_id_, request_));
        ack_due_ = now + b_.ack_timeout;
    }

    void send_reset(timestamp now) {
        write_control(wire::packet_type::reset, b_.reset_id);
        reset_due_.reset();
        if (b_.repeats_resets) reset_due_ = now + b_.reset_interval;
    }

    void break_in(timestamp now) {
        const std::uint8_t b = wire::breakin_byte;
        write(std::span(&b, 1));
        session_.breakin_sent();
        breakin_sent_for_stop_ = true;
        if (b_.breakin_interval > std::chrono::nanoseconds(0)) breakin_due_ = now + b_.breakin_interval;
    }

    void write_control(wire::packet_type type, std::uint32_t id) {
        auto frame = control_frame(type, id);
        if (b_.python3_control_packets) {
            frame[12] = 0xC2;
            frame[13] = 0x80;
            frame.push_back(0);
            frame.push_back(0);
        }
        write(frame);
    }

    debugger_behaviour b_;
    debugging_session session_;
    decode::decoder decoder_;
    bool handshake_pending_ = false;
    std::optional<timestamp> reset_due_, ack_due_, breakin_due_;
    bool breakin_sent_for_stop_ = false;
    std::size_t started_ = 0;
    std::vector<std::uint8_t> request_;
    bool sending_ = false, first_transmission_ = false;
    std::uint32_t next_id_ = wire::initial_packet_id, sent_id_ = 0, expected_id_ = wire::initial_packet_id;
    std::uint32_t last_id_ = wire::initial_packet_id, last_checksum_ = 0;
    bool fresh_ = true;
    std::size_t retransmissions_ = 0;
};

}  // namespace kdcom::sim::peers
