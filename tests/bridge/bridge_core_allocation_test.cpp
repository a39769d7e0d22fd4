// No heap allocation per packet through the bridge in steady state: a debugger's requests go
// through a target endpoint and the bridge core to the guest, and the guest's replies come back the
// same way, with acknowledgements, answers held to the end of a turn, break-in polls and fast-path
// reads among them, counted by a replacement operator new. (The Asio runner around the core is not counted here.)
#include <gtest/gtest.h>

#include <vector>

#include "../../bench/allocation_counter.hpp"
#include "kdcom/bridge/core.hpp"
#include "kdcom/endpoint/endpoint.hpp"
#include "kdcom/kd/manipulate.hpp"

namespace {
using namespace kdcom;
using bytes = std::vector<std::uint8_t>;

// The debugger, the target endpoint with the bridge core, and a guest that answers every request
// with a reply of the requested size, all joined by buffers reserved up front.
class rig {
public:
    rig() : core_({.fast_path = true}) {
        to_target_.reserve(1 << 16);
        to_debugger_.reserve(1 << 16);
        message_.reserve(1 << 16);
        reply_.reserve(1 << 16);
        core_.guest_attached(1 << 16);
        guest_receive();
        request_.resize(kd::manipulate_header_size);
    }

    // One request from the debugger, `count` bytes of memory; physical ones take the fast path.
    void exchange(std::uint32_t count, bool physical) {
        kd::manipulate_header h;
        h.api = physical ? kd::manipulate_api::read_physical_memory : kd::manipulate_api::read_virtual_memory;
        h.memory = {0x1000, count, 0};
        kd::encode_manipulate(h, request_);
        (void)debugger.send(wire::packet_type::state_manipulate, request_, {}, now_);
        for (int round = 0; round < 20 && (debugger.send_in_progress() || !to_target_.empty() || !to_debugger_.empty() ||
                                            replies_ < expected_replies_ + 1);
             ++round) {
            drain_debugger();
            if (!to_target_.empty()) {
                target.receive(to_target_, now_);
                to_target_.clear();
                drain_target();
            }
            if (!to_debugger_.empty()) {
                debugger.receive(to_debugger_, now_);
                to_debugger_.clear();
            }
        }
        ++expected_replies_;
        now_ += std::chrono::milliseconds(1);
    }

    endpoint debugger{{.role = role::debugger, .send_resets = false}};
    endpoint target{{.role = role::target}};
    std::size_t replies_ = 0, expected_replies_ = 0, guest_requests = 0;

    const bridge::core& core() const { return core_; }

private:
    void drain_debugger() {
        while (auto e = debugger.next_event()) {
            if (auto* t = std::get_if<events::transmit>(&*e)) to_target_.insert(to_target_.end(), t->bytes().begin(), t->bytes().end());
            else if (std::holds_alternative<events::packet_received>(*e)) ++replies_;
        }
    }

    void drain_target() {
        for (bool again = true; again;) {
            again = false;
            while (auto e = target.next_event()) {
                if (auto* t = std::get_if<events::transmit>(&*e)) {
                    to_debugger_.insert(to_debugger_.end(), t->bytes().begin(), t->bytes().end());
                } else if (auto* p = std::get_if<events::packet_received>(&*e)) {
                    core_.debugger_packet(p->type, p->body);
                    again |= drain_core();
                } else if (auto* c = std::get_if<events::send_completed>(&*e)) {
                    if (sending_guest_) core_.guest_send_finished(send_id_, c->result == events::send_completed::outcome::acknowledged);
                    sending_guest_ = false;
                    again |= drain_core();
                }
            }
            if (core_.waits_for_turn_end()) {
                core_.end_of_turn();
                again |= drain_core();
            }
        }
    }

    // Runs the core's events; the guest answers as it goes. True if anything went to the target.
    bool drain_core() {
        bool sent = false;
        while (auto e = core_.next_event()) {
            if (auto* a = std::get_if<bridge::bridge_events::answer_guest>(&*e)) {
                // Through the guest's ring: encoded, then decoded on the other side.
                message_.resize(shm::kd_pdu_size(a->pdu));
                std::error_code ec;
                shm::encode_kd_pdu(a->pdu, message_, ec);
                shm::kd_pdu answer;
                (void)shm::decode_kd_pdu(message_, answer);
                guest_answered(answer);
            } else if (auto* s = std::get_if<bridge::bridge_events::send_to_debugger>(&*e)) {
                (void)target.send(s->type, s->header, s->data, now_);
                if (s->purpose == bridge::send_purpose::guest) {
                    sending_guest_ = true;
                    send_id_ = s->id;
                }
                sent = true;
            } else if (std::holds_alternative<bridge::bridge_events::poll_breakin>(*e)) {
                core_.breakin_polled(target.poll_breakin());
            } else if (auto* r = std::get_if<bridge::bridge_events::read_guest_memory>(&*e)) {
                std::fill(r->into.begin(), r->into.end(), std::uint8_t{0x5A});
                core_.guest_memory_read(r->into.size());
            }
        }
        return sent;
    }

    void guest_answered(const shm::kd_pdu& a) {
        if (a.operation == KDCOM_SHM_PDU_RECEIVED && a.packet_type == static_cast<std::uint16_t>(wire::packet_type::poll_breakin))
            return guest_receive();
        const bool carried = a.operation == KDCOM_SHM_PDU_SENT && (a.status & KDCOM_SHM_SENT_CARRIES_PACKET);
        if (a.operation == KDCOM_SHM_PDU_SENT && !carried) return guest_poll();
        if (a.status != KDCOM_SHM_RECEIVE_OK && !carried) return guest_receive();
        // A request: reply with the memory asked for (the body built in place, no allocation).
        ++guest_requests;
        reply_.assign(a.header.begin(), a.header.end());
        reply_.insert(reply_.end(), a.data.begin(), a.data.end());
        auto request = kd::decode_manipulate(reply_);
        const std::size_t n = request ? std::min<std::size_t>(request->memory.transfer_count, 4000 - kd::manipulate_header_size) : 0;
        reply_.resize(kd::manipulate_header_size + n, 0x33);
        shm::kd_pdu send;
        send.operation = KDCOM_SHM_PDU_SEND;
        send.packet_type = static_cast<std::uint16_t>(wire::packet_type::state_manipulate);
        send.sequence = ++sequence_;
        send.status = KDCOM_SHM_SEND_TAKES_PACKET;
        send.header = std::span(reply_).first(kd::manipulate_header_size);
        send.data = std::span(reply_).subspan(kd::manipulate_header_size);
        (void)core_.guest_call(send, now_);
    }

    // Between requests the guest polls once for a break-in, then waits for the next request.
    void guest_poll() {
        shm::kd_pdu poll;
        poll.operation = KDCOM_SHM_PDU_RECEIVE;
        poll.packet_type = static_cast<std::uint16_t>(wire::packet_type::poll_breakin);
        poll.sequence = ++sequence_;
        (void)core_.guest_call(poll, now_);
    }

    void guest_receive() {
        shm::kd_pdu receive;
        receive.operation = KDCOM_SHM_PDU_RECEIVE;
        receive.packet_type = static_cast<std::uint16_t>(wire::packet_type::state_manipulate);
        receive.sequence = ++sequence_;
        receive.status = 1000;
        receive.header_capacity = kd::manipulate_header_size;
        receive.data_capacity = 4000;
        (void)core_.guest_call(receive, now_);
    }

    bridge::core core_;
    timestamp now_{};
    bytes to_target_, to_debugger_, message_, reply_, request_;
    bool sending_guest_ = false;
    std::uint64_t send_id_ = 0;
    std::uint32_t sequence_ = 0;
};

TEST(BridgeAllocation, SteadyStateRequestsThroughTheBridgeCoreAllocateNothingPerPacket) {
    rig r;
    for (int i = 0; i < 50; ++i) r.exchange(i % 2 ? 3000 : 8, i % 3 == 0);  // warm up
    const auto before_stats = r.core().stats();
    const std::size_t replies_before = r.replies_;
    const std::size_t before = bench::allocations.load();
    for (int i = 0; i < 2000; ++i) r.exchange(i % 2 ? 3000 : 8, i % 3 == 0);
    EXPECT_EQ(bench::allocations.load() - before, 0u);
    EXPECT_EQ(r.replies_ - replies_before, 2000u) << "every request answered, once";
    const auto& after = r.core().stats();
    EXPECT_GT(after.fast_path_reads - before_stats.fast_path_reads, 600u) << "the fast path was exercised";
    EXPECT_GT(after.packets_to_guest - before_stats.packets_to_guest, 1200u) << "the guest served the others";
}

}  // namespace
