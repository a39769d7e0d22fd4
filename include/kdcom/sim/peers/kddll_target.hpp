// A model of the Windows-style KD transport inside a kernel (Windows kdcom.dll, ReactOS kddll),
// written from their documented behaviour: blocking KdSendPacket/KdReceivePacket calls that read
// the serial line byte by byte, and a kernel that is either running (polling one byte per tick for
// a break-in) or stopped (reporting its stop, then answering requests until told to continue).
//
// What the model reproduces, because it decides interoperability:
// - the line is read only inside KdReceivePacket: a RESET that arrives while the kernel runs is
//   read by the break-in poll, one byte per tick, and thrown away;
// - RESET is answered (with an id of the implementation's choosing), both ids restart, and the
//   call returns "resend": a send goes again with the initial id, and the wait for a request
//   reports the stop again;
// - waiting for an ACK, any data packet counts as one (its body is left unread) and is asked for
//   again with RESEND;
// - ReactOS echoes SYNC in its ACKs and compares an ACK with its id less SYNC; it acknowledges and
//   ignores a packet with an unexpected id or (shipped version) an unexpected type, including a
//   type damaged on the way, so a request can be acknowledged and never answered;
// - the old kddll has no duplicate detection, answers an unexpected type with RESEND, and gives up
//   a DbgPrint after one missed ACK;
// - droppable sends give up after their retries and the ids restart as at boot.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include <boost/endian/conversion.hpp>

#include "kdcom/endpoint/droppable.hpp"
#include "kdcom/sim/node.hpp"
#include "kdcom/sim/peers/frames.hpp"
#include "kdcom/sim/simulated_kernel.hpp"
#include "kdcom/wire/checksum.hpp"
#include "kdcom/wire/header.hpp"

namespace kdcom::sim::peers {

struct kddll_behaviour {
    std::uint32_t reset_answer_id = 0;
    bool ack_echoes_sync = true;             // ReactOS: the ACK carries the id as received
    bool tracks_remote_id = true;            // false: takes every valid packet (old kddll)
    bool resend_on_unexpected_type = false;  // old kddll: RESEND, the body left unread
    bool debug_io_single_attempt = false;    // old kddll: a DbgPrint gets one try
    unsigned initial_retries = 20;           // until the first acknowledged send
    unsigned retries = 20;                   // KdpDefaultRetries
    std::chrono::nanoseconds leader_timeout = std::chrono::seconds(1);      // a receive call's wait
    std::chrono::nanoseconds byte_timeout = std::chrono::milliseconds(200);  // inside a frame
    std::chrono::nanoseconds poll_interval = std::chrono::milliseconds(10);  // while running
};

// Windows' kdcom.dll (from the public NT sources and captures): 5 retries before first contact,
// ACKs without SYNC, a RESET answered with whatever is on its stack.
inline kddll_behaviour windows_kdcom() {
    return {.reset_answer_id = 0x0005F863, .ack_echoes_sync = false, .initial_retries = 5, .retries = 20};
}
// ReactOS drivers/base/kdcom (the transport it ships).
inline kddll_behaviour reactos_kdcom() { return {}; }
// ReactOS drivers/base/kddll (the older one).
inline kddll_behaviour reactos_kddll_old() {
    return {.tracks_remote_id = false, .resend_on_unexpected_type = true, .debug_io_single_attempt = true};
}

class kddll_target final : public node {
public:
    explicit kddll_target(const kddll_behaviour& behaviour, simulated_memory memory = simulated_memory())
        : b_(behaviour), memory_(std::move(memory)) {}

    void start(timestamp now) override { report_stop(now); }

    void receive(std::span<const std::uint8_t> bytes, timestamp now) override {
        input_.insert(input_.end(), bytes.begin(), bytes.end());
        if (call_ != call::none) run_receive(now);
    }

    void on_time(timestamp now) override {
        if (call_ != call::none && now >= receive_deadline_) receive_timed_out(now);
        else if (call_ == call::none && running_ && now >= next_poll_) poll(now);
    }

    std::optional<timestamp> deadline() const override {
        if (call_ != call::none) return receive_deadline_;
        if (running_) return next_poll_;
        return std::nullopt;
    }

    bool running() const noexcept { return running_; }
    std::size_t stops_reported() const noexcept { return stops_reported_; }
    std::size_t requests_answered() const noexcept { return requests_answered_; }
    std::size_t resets_answered() const noexcept { return resets_answered_; }
    std::size_t prints_dropped() const noexcept { return prints_dropped_; }

private:
    enum class call { none, send, wait_request };  // the blocking call the kernel is in
    enum class stage { leader, header, body };
    enum class status { received, resend, timed_out };
    enum class after { wait_request, run };  // what the kernel does once a send returns

    // ---- The kernel ------------------------------------------------------------------------

    void report_stop(timestamp now) {
        running_ = false;
        ++stops_reported_;
        send(wire::packet_type::state_change64, stop_report(), after::wait_request, now);
    }

    void wait_for_request(timestamp now) {
        call_ = call::wait_request;
        begin_receive(wire::packet_type::state_manipulate, now);
    }

    void on_request(std::span<const std::uint8_t> body, timestamp now) {
        ++requests_answered_;
        auto answer = answer_request(body, memory_);
        if (answer.resume) {
            running_ = true;
            next_poll_ = now + b_.poll_interval;
            send(wire::packet_type::debug_io, print_message("model kernel: running\n"), after::run, now);
        } else if (answer.reply) {
            send(wire::packet_type::state_manipulate, std::move(*answer.reply), after::wait_request, now);
        } else {
            wait_for_request(now);
        }
    }

    // KdPollBreakIn while running: one byte per tick; anything but 'b' is lost.
    void poll(timestamp now) {
        next_poll_ = now + b_.poll_interval;
        if (input_.empty()) return;
        const std::uint8_t byte = input_.front();
        input_.pop_front();
        if (byte == wire::breakin_byte) report_stop(now);
    }

    // ---- KdSendPacket ----------------------------------------------------------------------

    void send(wire::packet_type type, std::vector<std::uint8_t> body, after then, timestamp now) {
        send_type_ = type;
        send_body_ = std::move(body);
        after_send_ = then;
        retries_left_ = contacted_ ? b_.retries : b_.initial_retries;
        transmit(now);
    }

    void transmit(timestamp now) {
        write(data_frame(send_type_, current_id_, send_body_));
        call_ = call::send;
        begin_receive(wire::packet_type::acknowledge, now);
    }

    void send_returned(status s, timestamp now) {
        const bool print = send_type_ == wire::packet_type::debug_io;
        if (s == status::received) {
            current_id_ &= ~wire::sync_packet_id;
            contacted_ = true;
            return continue_after_send(now);
        }
        if (print && b_.debug_io_single_attempt) {
            ++prints_dropped_;
            return continue_after_send(now);
        }
        if (s == status::timed_out && retries_left_ > 0 && --retries_left_ == 0 &&
            is_droppable(send_type_, send_body_, true)) {
            ++prints_dropped_;
            current_id_ = wire::initial_packet_id | wire::sync_packet_id;  // no debugger: as at boot
            remote_id_ = wire::initial_packet_id;
            contacted_ = false;
            return continue_after_send(now);
        }
        transmit(now);
    }

    void continue_after_send(timestamp now) {
        call_ = call::none;
        if (after_send_ == after::wait_request) wait_for_request(now);
    }

    // ---- KdReceivePacket -------------------------------------------------------------------

    void begin_receive(wire::packet_type wanted, timestamp now) {
        wanted_ = wanted;
        stage_ = stage::leader;
        leader_count_ = 0;
        receive_deadline_ = now + b_.leader_timeout;
        run_receive(now);
    }

    void finish_receive(status s, timestamp now, std::span<const std::uint8_t> body = {}) {
        const call was = call_;
        call_ = call::none;
        if (was == call::send) return send_returned(s, now);
        if (s == status::received) return on_request(body, now);
        if (s == status::resend) return report_stop(now);  // KdpSendWaitContinue sends it again
        wait_for_request(now);                              // a timeout: wait again
    }

    void receive_timed_out(timestamp now) {
        if (stage_ == stage::body) {  // a packet stopped arriving halfway: ask for it again
            write(control_frame(wire::packet_type::resend, 0));
            stage_ = stage::leader;
            receive_deadline_ = now + b_.leader_timeout;
            return;
        }
        finish_receive(status::timed_out, now);
    }

    void run_receive(timestamp now) {
        for (;;) {
            if (stage_ == stage::leader && !scan_leader(now)) return;
            if (stage_ == stage::header) {
                if (input_.size() < wire::header_size - wire::leader_size) return;
                read_header();
                if (leader_byte_ == wire::control_leader_byte) {
                    if (on_control(now)) return;
                    continue;
                }
                if (wanted_ == wire::packet_type::acknowledge) {  // data while awaiting an ACK
                    write(control_frame(wire::packet_type::resend, 0));
                    current_id_ ^= 1;
                    finish_receive(status::received, now);
                    return;
                }
                if (!b_.tracks_remote_id && header_.type != wanted_) {  // old: judged on the header
                    write(control_frame(wire::packet_type::resend, 0));
                    stage_ = stage::leader;
                    continue;
                }
                const std::size_t least = wanted_ == wire::packet_type::state_manipulate ? kd::manipulate_header_size : 0;
                if (header_.byte_count < least || header_.byte_count > wire::default_max_body) {
                    write(control_frame(wire::packet_type::resend, 0));
                    stage_ = stage::leader;
                    continue;
                }
                stage_ = stage::body;
                receive_deadline_ = now + b_.byte_timeout;
            }
            if (stage_ == stage::body) {
                if (input_.size() < header_.byte_count + 1u) return;
                std::vector<std::uint8_t> body(input_.begin(), input_.begin() + header_.byte_count);
                const std::uint8_t trailer = input_[header_.byte_count];
                input_.erase(input_.begin(), input_.begin() + header_.byte_count + 1);
                stage_ = stage::leader;
                if (trailer != wire::trailer_byte || wire::checksum(body) != header_.checksum) {
                    write(control_frame(wire::packet_type::resend, 0));
                    continue;
                }
                write(control_frame(wire::packet_type::acknowledge,
                                    b_.ack_echoes_sync ? header_.id : header_.id & ~wire::sync_packet_id));
                if (b_.tracks_remote_id) {
                    if (header_.id != remote_id_) continue;  // acknowledged and ignored
                    if (header_.type != wanted_) continue;   // likewise (a damaged type too)
                    remote_id_ ^= 1;
                }
                finish_receive(status::received, now, body);
                return;
            }
        }
    }

    // Reads bytes until four identical leader bytes; false if the input ran out first.
    bool scan_leader(timestamp now) {
        while (!input_.empty()) {
            const std::uint8_t byte = input_.front();
            input_.pop_front();
            if (!is_leader_byte(byte)) {
                leader_count_ = 0;
                continue;
            }
            leader_count_ = byte == leader_byte_ ? leader_count_ + 1 : 1;
            leader_byte_ = byte;
            if (leader_count_ == 4) {
                stage_ = stage::header;
                leader_count_ = 0;
                receive_deadline_ = now + b_.byte_timeout;
                return true;
            }
        }
        return false;
    }

    void read_header() {
        std::uint8_t h[wire::header_size] = {leader_byte_, leader_byte_, leader_byte_, leader_byte_};
        for (std::size_t i = wire::leader_size; i < wire::header_size; ++i) {
            h[i] = input_.front();
            input_.pop_front();
        }
        header_ = wire::load_header(std::span<const std::uint8_t, wire::header_size>(h, wire::header_size));
    }

    // True if the call returned.
    bool on_control(timestamp now) {
        stage_ = stage::leader;
        switch (header_.type) {
        case wire::packet_type::acknowledge:
            if (wanted_ == wire::packet_type::acknowledge && header_.id == (current_id_ & ~wire::sync_packet_id)) {
                current_id_ ^= 1;
                finish_receive(status::received, now);
                return true;
            }
            return false;
        case wire::packet_type::reset:
            ++resets_answered_;
            current_id_ = wire::initial_packet_id;
            remote_id_ = wire::initial_packet_id;
            write(control_frame(wire::packet_type::reset, b_.reset_answer_id));
            finish_receive(status::resend, now);
            return true;
        case wire::packet_type::resend:
            finish_receive(status::resend, now);
            return true;
        default: return false;
        }
    }

    kddll_behaviour b_;
    simulated_memory memory_;
    std::deque<std::uint8_t> input_;

    // Kernel.
    bool running_ = false;
    timestamp next_poll_{};
    std::size_t stops_reported_ = 0, requests_answered_ = 0, resets_answered_ = 0, prints_dropped_ = 0;

    // KdSendPacket.
    wire::packet_type send_type_{};
    std::vector<std::uint8_t> send_body_;
    after after_send_ = after::wait_request;
    unsigned retries_left_ = 0;
    bool contacted_ = false;
    std::uint32_t current_id_ = wire::initial_packet_id | wire::sync_packet_id;
    std::uint32_t remote_id_ = wire::initial_packet_id;

    // KdReceivePacket.
    call call_ = call::none;
    wire::packet_type wanted_{};
    stage stage_ = stage::leader;
    std::uint8_t leader_byte_ = 0;
    unsigned leader_count_ = 0;
    wire::packet_header header_;
    timestamp receive_deadline_{};
};

}  // namespace kdcom::sim::peers
