// What a debugger's user does in one attach, at the KD level, whichever KDCOM implementation
// carries it: wait for the target to stop (breaking in first if it is running), GetVersion, a
// series of memory reads whose bytes are all checked, continue, break in, read once more, and
// detach (continue). The debugger that runs it decides how requests travel; this only says what
// to ask next and judges what comes back.
//
// Replies are matched to the request by ApiNumber and, for reads, by address and count, so a
// reply a peer sent twice (Xen's kdd executes a repeated request twice) is recognised and dropped
// rather than taken as the answer to the next request.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/state_change.hpp"
#include "kdcom/sim/simulated_kernel.hpp"
#include "kdcom/sim/random.hpp"
#include "kdcom/wire/packet_type.hpp"

namespace kdcom::sim {

struct session_plan {
    std::size_t reads = 1000;           // checked memory reads while stopped
    bool starts_running = false;        // the target runs when we attach: break in first
    bool break_in_and_continue = true;  // continue, break in, read again, then detach
    std::uint64_t seed = 1;             // chooses addresses and sizes
    // What the target holds at each virtual address (reads are checked against it): the simulated
    // kernel's memory unless the target is another.
    std::function<std::uint8_t(std::uint64_t)> memory = memory_byte;
};

class debugging_session {
public:
    enum class phase {
        wait_for_stop,     // for the state change (after a break-in if `wants_breakin()`)
        get_version,
        reading,
        continuing,        // Continue sent; done once the target has it
        wait_after_breakin,
        read_after_stop,
        detaching,         // Continue sent; done once the target has it
        done,
        failed,
    };

    explicit debugging_session(const session_plan& plan) : plan_(plan), random_(mix_seed(plan.seed, 7)) {
        breakin_wanted_ = plan.starts_running;
    }

    phase current() const noexcept { return phase_; }
    bool done() const noexcept { return phase_ == phase::done; }
    bool failed() const noexcept { return phase_ == phase::failed; }
    const std::string& failure() const noexcept { return failure_; }

    // The request to have in flight now, if any; the same bytes until it is answered.
    const std::vector<std::uint8_t>* request() const { return request_ ? &*request_ : nullptr; }
    // Whether the request is answered by a reply (false for Continue: it is done when delivered).
    bool reply_expected() const noexcept { return phase_ != phase::continuing && phase_ != phase::detaching; }
    // Whether we wait for a stop that only a break-in will bring.
    bool wants_breakin() const noexcept {
        return breakin_wanted_ && (phase_ == phase::wait_for_stop || phase_ == phase::wait_after_breakin);
    }
    bool waiting_for_stop() const noexcept {
        return phase_ == phase::wait_for_stop || phase_ == phase::wait_after_breakin;
    }

    // A data packet from the target. True if it was the reply to the request.
    bool on_packet(wire::packet_type type, std::span<const std::uint8_t> body) {
        if (type == wire::packet_type::state_change64) {
            ++stops_;
            if (phase_ == phase::continuing) advance();  // it ran (our Continue arrived) and stopped
            if (waiting_for_stop()) advance();
            // A stop while a request is outstanding is a target that was reset and reported
            // again: the request stays outstanding and is sent again by the debugger.
            return false;
        }
        if (type != wire::packet_type::state_manipulate || !request_ || !reply_expected()) return false;
        const auto reply = kd::decode_manipulate(body);
        const auto asked = kd::decode_manipulate(*request_);
        if (!reply || !asked || !kd::is_reply_to(*asked, *reply)) {
            ++stray_replies_;
            return false;
        }
        if (asked->api == kd::manipulate_api::read_virtual_memory) {
            const auto data = body.subspan(kd::manipulate_header_size);
            if (reply->return_status != kd::status::success || reply->memory.actual_bytes != asked->memory.transfer_count ||
                data.size() != asked->memory.transfer_count)
                return damaged("read of " + std::to_string(asked->memory.transfer_count) + " bytes came back short");
            for (std::size_t i = 0; i < data.size(); ++i)
                if (data[i] != plan_.memory(asked->memory.address + i))
                    return damaged("read at " + std::to_string(asked->memory.address) + " returned a wrong byte");
            ++reads_checked_;
        } else if (asked->api == kd::manipulate_api::get_version && reply->version.machine_type != 0x8664) {
            return damaged("GetVersion reply without the machine type");
        }
        advance();
        return true;
    }

    // The debugger gave up on the request.
    void request_failed(const std::string& why) { fail(why); }
    // Whether the failure was a reply with wrong or missing bytes (not a request given up).
    bool data_damaged() const noexcept { return failed() && damaged_; }

    // Counts the requests issued: a new value means request() holds a new one.
    std::size_t requests_issued() const noexcept { return requests_issued_; }

    // The target has the request (its ACK came): what finishes a Continue.
    void on_request_delivered() {
        if (!reply_expected() && request_) advance();
    }

    // A break-in was sent for the stop we wait for.
    void breakin_sent() noexcept { ++breakins_; }

    std::size_t reads_checked() const noexcept { return reads_checked_; }
    std::size_t stops() const noexcept { return stops_; }
    std::size_t stray_replies() const noexcept { return stray_replies_; }
    std::size_t breakins() const noexcept { return breakins_; }

private:
    bool damaged(std::string why) {
        damaged_ = true;
        return fail(std::move(why));
    }

    bool fail(std::string why) {
        phase_ = phase::failed;
        failure_ = std::move(why);
        request_.reset();
        return false;
    }

    void advance() {
        request_.reset();
        switch (phase_) {
        case phase::wait_for_stop: phase_ = phase::get_version; break;
        case phase::get_version: phase_ = plan_.reads > 0 ? phase::reading : next_after_reads(); break;
        case phase::reading:
            if (++reads_done_ >= plan_.reads) phase_ = next_after_reads();
            break;
        case phase::continuing:
            phase_ = phase::wait_after_breakin;
            breakin_wanted_ = true;
            break;
        case phase::wait_after_breakin: phase_ = phase::read_after_stop; break;
        case phase::read_after_stop: phase_ = phase::detaching; break;
        case phase::detaching: phase_ = phase::done; break;
        case phase::done:
        case phase::failed: return;
        }
        if (phase_ == phase::get_version) request_ = get_version_request();
        else if (phase_ == phase::reading || phase_ == phase::read_after_stop) request_ = next_read();
        else if (phase_ == phase::continuing || phase_ == phase::detaching) request_ = continue_request();
        if (request_) ++requests_issued_;
    }

    phase next_after_reads() const noexcept {
        return plan_.break_in_and_continue ? phase::continuing : phase::detaching;
    }

    std::vector<std::uint8_t> next_read() {
        const std::uint64_t address = 0xFFFFF80000000000ull + random_.below(1ull << 30);
        // Mostly small reads, as a debugger's are; now and then a full packet.
        const auto count = static_cast<std::uint32_t>(random_.chance(0.1) ? max_read : 1 + random_.below(256));
        return read_request(address, count);
    }

    session_plan plan_;
    random random_;
    phase phase_ = phase::wait_for_stop;
    std::optional<std::vector<std::uint8_t>> request_;
    bool breakin_wanted_ = false;
    std::string failure_;
    bool damaged_ = false;
    std::size_t reads_done_ = 0, reads_checked_ = 0, stops_ = 0, stray_replies_ = 0, breakins_ = 0;
    std::size_t requests_issued_ = 0;
};

}  // namespace kdcom::sim
