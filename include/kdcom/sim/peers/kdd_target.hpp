// A model of Xen's kdd (tools/debugger/kdd/kdd.c), a target modelled on WinDbg traffic, written
// from its documented behaviour:
// - on connect it stops the guest and sends a state change (ids start at 0x80800000, no SYNC);
// - it answers a RESET only if its id is 0, with RESET 0xDEADBEEF, a DbgPrint and a state change,
//   and its ids carry on (no restart);
// - it never retransmits, ignores ACK and RESEND, and has no duplicate detection: every valid
//   request is acknowledged and executed, a repeated one twice;
// - a data packet with a bad checksum or a type other than STATE_MANIPULATE gets RESEND;
// - Continue has no reply; a 'b' read at a packet boundary stops the guest (a state change);
// - its reader slides one byte at a time until "0000" or "iiii", trusts ByteCount in control
//   packets too (a damaged one swallows that many following bytes), ignores the trailer, and has
//   no read timeout.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "kdcom/sim/node.hpp"
#include "kdcom/sim/peers/frames.hpp"
#include "kdcom/sim/simulated_kernel.hpp"
#include "kdcom/wire/checksum.hpp"
#include "kdcom/wire/header.hpp"

namespace kdcom::sim::peers {

class kdd_target final : public node {
public:
    explicit kdd_target(simulated_memory memory = simulated_memory()) : memory_(std::move(memory)) {}

    void start(timestamp) override { stop(); }

    void receive(std::span<const std::uint8_t> bytes, timestamp) override {
        for (std::uint8_t byte : bytes) take(byte);
    }
    void on_time(timestamp) override {}
    std::optional<timestamp> deadline() const override { return std::nullopt; }

    bool running() const noexcept { return running_; }
    std::size_t requests_executed() const noexcept { return requests_executed_; }
    std::size_t stops_reported() const noexcept { return stops_reported_; }
    // Frames read at a place no packet started, or with a ByteCount that no longer matched the
    // bytes (each swallowed what followed it, up to ByteCount bytes, with no timeout to stop it),
    // counting one still being read: the simulated link delivers a real packet whole, so a frame
    // left half-read is one swallowing the line.
    std::size_t misframed() const noexcept { return misframed_ + (buffer_.size() >= 8 ? 1 : 0); }

private:
    void take(std::uint8_t byte) {
        if (buffer_.empty() && byte == wire::breakin_byte) return stop();
        buffer_.push_back(byte);
        if (buffer_.size() < wire::leader_size) return;
        const bool data = std::equal(buffer_.begin(), buffer_.begin() + 4, "0000");
        const bool control = std::equal(buffer_.begin(), buffer_.begin() + 4, "iiii");
        if (!data && !control) {  // slide one byte
            buffer_.erase(buffer_.begin());
            return;
        }
        if (buffer_.size() < 8) return;
        const std::size_t length = buffer_[6] | (buffer_[7] << 8);
        const std::size_t total = wire::header_size + length + (data ? 1 : 0);
        if (buffer_.size() < total) return;
        std::vector<std::uint8_t> frame = std::move(buffer_);
        buffer_.clear();
        const auto h = wire::load_header(std::span<const std::uint8_t, wire::header_size>(frame.data(), wire::header_size));
        // kdd does not look at the trailer; the model does, to know when a ByteCount was wrong.
        if (data && frame.back() != wire::trailer_byte) ++misframed_;
        if (control) on_control(h);
        else on_data(h, std::span<const std::uint8_t>(frame).subspan(wire::header_size, length));
    }

    void on_control(const wire::packet_header& h) {
        if (h.byte_count != 0 || !wire::is_control_type(h.type)) ++misframed_;
        if (h.type != wire::packet_type::reset || h.id != 0) return;
        write(control_frame(wire::packet_type::reset, 0xDEADBEEF));
        send(wire::packet_type::debug_io, print_message("[kdd: connected to a model guest]\r\n"));
        stop();
    }

    void on_data(const wire::packet_header& h, std::span<const std::uint8_t> body) {
        if (wire::checksum(body) != h.checksum || h.type != wire::packet_type::state_manipulate) {
            write(control_frame(wire::packet_type::resend, h.id));
            return;
        }
        write(control_frame(wire::packet_type::acknowledge, h.id));
        ++requests_executed_;
        auto answer = answer_request(body, memory_);
        if (answer.resume) running_ = true;
        if (answer.reply) send(wire::packet_type::state_manipulate, *answer.reply);
    }

    void stop() {
        running_ = false;
        ++stops_reported_;
        send(wire::packet_type::state_change64, stop_report());
    }

    void send(wire::packet_type type, std::span<const std::uint8_t> body) {
        next_id_ ^= 1;
        write(data_frame(type, next_id_, body));
    }

    simulated_memory memory_;
    std::vector<std::uint8_t> buffer_;
    std::uint32_t next_id_ = wire::initial_packet_id | 1;
    bool running_ = true;
    std::size_t requests_executed_ = 0, stops_reported_ = 0, misframed_ = 0;
};

}  // namespace kdcom::sim::peers
