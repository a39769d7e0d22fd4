// A simulated kernel as a bridge's guest sees it, in virtual time: each KdSendPacket and
// KdReceivePacket is one KD PDU to the host, answered by one PDU back (kdcom/shm/layout.h). It
// reports a stop, asks for the debugger's requests (taking them with the answers to its sends when
// it can), answers them from simulated_kernel.hpp, prints when it resumes, polls for break-ins
// while it runs, and reports its stop again when a receive says RESEND, as Windows' wait loop does.
//
// It also judges what it is answered: every call must get exactly one answer, to that call, with
// what fits its buffers. What breaks that is recorded in violations().
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kdcom/endpoint/config.hpp"
#include "kdcom/kd/manipulate.hpp"
#include "kdcom/shm/kd_pdu.hpp"
#include "kdcom/sim/simulated_kernel.hpp"
#include "kdcom/wire/constants.hpp"
#include "kdcom/wire/packet_type.hpp"

namespace kdcom::sim {

struct guest_kernel_options {
    timestamp think_time = std::chrono::microseconds(5);        // between an answer and the next call
    timestamp poll_interval = std::chrono::milliseconds(10);    // break-in polls while running
    std::uint32_t receive_timeout_ms = 1000;                    // a stopped kernel's RECEIVE
    bool takes_packets = true;                                  // SENDs ask for the next packet
};

class guest_kernel {
public:
    static constexpr std::uint16_t data_capacity =
        static_cast<std::uint16_t>(wire::default_max_body - kd::manipulate_header_size);

    explicit guest_kernel(const guest_kernel_options& options = {}) : options_(options) {}

    // Power on (or reboot): everything it was doing is forgotten, and it reports a stop.
    void boot(timestamp now) {
        outstanding_.reset();
        running_ = false;
        plan(step::report_stop, now + options_.think_time);
        ++boots_;
    }

    // Powered off: no calls until the next boot().
    void power_off() {
        outstanding_.reset();
        next_call_.reset();
    }

    // The call due by `now`, if any; the kernel then waits for its answer.
    std::optional<shm::kd_pdu> take_call(timestamp now) {
        if (!next_call_ || *next_call_ > now || outstanding_) return std::nullopt;
        next_call_.reset();
        shm::kd_pdu call;
        call.sequence = ++sequence_;
        switch (step_) {
        case step::report_stop:
            stop_body_ = stop_report();
            send(call, wire::packet_type::state_change64, stop_body_, {}, options_.takes_packets);
            break;
        case step::send_reply:
            send(call, wire::packet_type::state_manipulate, std::span(reply_).first(kd::manipulate_header_size),
                 std::span(reply_).subspan(kd::manipulate_header_size), options_.takes_packets);
            break;
        case step::print:
            print_ = print_message("simulated kernel: running\n");
            send(call, wire::packet_type::debug_io, print_, {}, false);
            break;
        case step::wait_request:
            call.operation = KDCOM_SHM_PDU_RECEIVE;
            call.packet_type = static_cast<std::uint16_t>(wire::packet_type::state_manipulate);
            call.status = options_.receive_timeout_ms;
            call.header_capacity = kd::manipulate_header_size;
            call.data_capacity = data_capacity;
            break;
        case step::poll:
            call.operation = KDCOM_SHM_PDU_RECEIVE;
            call.packet_type = static_cast<std::uint16_t>(wire::packet_type::poll_breakin);
            break;
        }
        outstanding_ = call;
        ++calls_;
        return call;
    }

    // The host's answer to the outstanding call.
    void on_answer(const shm::kd_pdu& a, timestamp now) {
        if (!outstanding_) return violation("an answer with no call outstanding");
        const shm::kd_pdu call = *std::exchange(outstanding_, std::nullopt);
        ++answers_;
        if (a.sequence != call.sequence) return violation("an answer to call " + std::to_string(a.sequence) + ", not to " + std::to_string(call.sequence));
        const bool was_send = call.operation == KDCOM_SHM_PDU_SEND;
        if (a.operation != (was_send ? KDCOM_SHM_PDU_SENT : KDCOM_SHM_PDU_RECEIVED))
            return violation("an answer of the wrong kind");
        const timestamp next = now + options_.think_time;
        if (was_send) return on_sent(a, next);
        if (a.packet_type != call.packet_type) return violation("a RECEIVED of another packet type");
        if (a.header.size() > call.header_capacity || a.data.size() > call.data_capacity)
            return violation("a RECEIVED larger than the buffers");
        if (step_ == step::poll) {
            if (a.status == KDCOM_SHM_RECEIVE_OK) return plan(step::report_stop, next);
            return plan(step::poll, now + options_.poll_interval);
        }
        switch (a.status) {
        case KDCOM_SHM_RECEIVE_OK:
            body_.assign(a.header.begin(), a.header.end());
            body_.insert(body_.end(), a.data.begin(), a.data.end());
            return serve(next);
        case KDCOM_SHM_RECEIVE_RESEND: return plan(step::report_stop, next);  // the debugger reset the link
        default: return plan(step::wait_request, next);                         // timed out: ask again
        }
    }

    // When take_call() has something, if it is not waiting for an answer.
    std::optional<timestamp> deadline() const { return outstanding_ ? std::nullopt : next_call_; }

    bool running() const noexcept { return running_; }
    bool waiting_for_answer() const noexcept { return outstanding_.has_value(); }
    std::size_t calls() const noexcept { return calls_; }
    std::size_t answers() const noexcept { return answers_; }
    std::size_t requests_served() const noexcept { return requests_served_; }
    std::size_t boots() const noexcept { return boots_; }
    const std::vector<std::string>& violations() const noexcept { return violations_; }

private:
    enum class step : std::uint8_t { report_stop, wait_request, send_reply, print, poll };

    void plan(step s, timestamp at) {
        step_ = s;
        next_call_ = at;
    }

    static void send(shm::kd_pdu& call, wire::packet_type type, std::span<const std::uint8_t> header,
                     std::span<const std::uint8_t> data, bool takes_packet) {
        call.operation = KDCOM_SHM_PDU_SEND;
        call.packet_type = static_cast<std::uint16_t>(type);
        call.status = takes_packet ? KDCOM_SHM_SEND_TAKES_PACKET : 0;
        call.header = header;
        call.data = data;
    }

    void on_sent(const shm::kd_pdu& a, timestamp next) {
        const bool carried = (a.status & KDCOM_SHM_SENT_CARRIES_PACKET) != 0;
        if (carried && !options_.takes_packets) return violation("a packet carried to a SEND that did not ask");
        const step done = step_;
        if (done == step::print) {
            running_ = true;
            return plan(step::poll, next);
        }
        if (carried) {
            if (a.packet_type != static_cast<std::uint16_t>(wire::packet_type::state_manipulate)) return plan(step::wait_request, next);
            body_.assign(a.header.begin(), a.header.end());
            body_.insert(body_.end(), a.data.begin(), a.data.end());
            return serve(next);
        }
        plan(step::wait_request, next);
    }

    // A request: answer it, or resume on Continue.
    void serve(timestamp next) {
        auto answer = answer_request(body_, memory_);
        ++requests_served_;
        if (answer.reply && answer.reply->size() >= kd::manipulate_header_size) {
            reply_ = std::move(*answer.reply);
            return plan(step::send_reply, next);
        }
        if (answer.resume) return plan(step::print, next);
        plan(step::wait_request, next);
    }

    void violation(std::string what) { violations_.push_back(std::move(what)); }

    guest_kernel_options options_;
    simulated_memory memory_;
    std::optional<timestamp> next_call_;
    step step_ = step::report_stop;
    std::optional<shm::kd_pdu> outstanding_;  // its spans are not used once sent
    std::uint32_t sequence_ = 0;
    bool running_ = false;
    std::vector<std::uint8_t> stop_body_, print_, reply_, body_;
    std::size_t calls_ = 0, answers_ = 0, requests_served_ = 0, boots_ = 0;
    std::vector<std::string> violations_;
};

}  // namespace kdcom::sim
