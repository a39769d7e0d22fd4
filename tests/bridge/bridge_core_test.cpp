// The bridge's rules one at a time (bridge/core.hpp), with no I/O: guest calls, debugger packets,
// resets, ends of sends and time go in; the test reads what comes out.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "kdcom/bridge/core.hpp"
#include "kdcom/sim/simulated_kernel.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::bridge;
using namespace std::chrono_literals;
using bytes = std::vector<std::uint8_t>;

constexpr auto manipulate = static_cast<std::uint16_t>(wire::packet_type::state_manipulate);
constexpr auto state_change = static_cast<std::uint16_t>(wire::packet_type::state_change64);

// An answer to the guest as it came out, its bytes copied.
struct answer {
    std::uint16_t operation, packet_type;
    std::uint32_t sequence, status;
    bytes header, data;
};

// What one input made the core do, with the queries answered as a runner would.
struct outputs {
    std::vector<answer> answers;
    std::vector<bridge_events::send_to_debugger> sends;  // spans not valid after the input
    std::vector<bytes> sent_bodies;
    std::vector<std::uint64_t> cancels;
    std::size_t polls = 0, memory_reads = 0;
};

class core_rig {
public:
    explicit core_rig(core_config config = {}) : c(config) { c.guest_attached(8192); }

    template <class Input>
    outputs run(Input&& input) {
        input();
        return drain();
    }

    outputs drain() {
        outputs o;
        while (auto e = c.next_event()) {
            if (auto* a = std::get_if<bridge_events::answer_guest>(&*e)) {
                o.answers.push_back({a->pdu.operation, a->pdu.packet_type, a->pdu.sequence, a->pdu.status,
                                     bytes(a->pdu.header.begin(), a->pdu.header.end()),
                                     bytes(a->pdu.data.begin(), a->pdu.data.end())});
            } else if (auto* s = std::get_if<bridge_events::send_to_debugger>(&*e)) {
                o.sends.push_back(*s);
                bytes body(s->header.begin(), s->header.end());
                body.insert(body.end(), s->data.begin(), s->data.end());
                o.sent_bodies.push_back(body);
            } else if (auto* x = std::get_if<bridge_events::cancel_guest_send>(&*e)) {
                o.cancels.push_back(x->id);
            } else if (std::holds_alternative<bridge_events::poll_breakin>(*e)) {
                ++o.polls;
                c.breakin_polled(breakin_pending);
            } else if (auto* r = std::get_if<bridge_events::read_guest_memory>(&*e)) {
                ++o.memory_reads;
                const std::size_t n = std::min(r->into.size(), readable);
                for (std::size_t i = 0; i < n; ++i) r->into[i] = sim::memory_byte(r->address + i);
                c.guest_memory_read(n);
            }
        }
        return o;
    }

    outputs send(std::uint16_t type, const bytes& body, bool takes_packet, std::uint32_t sequence = 1) {
        shm::kd_pdu call;
        call.operation = KDCOM_SHM_PDU_SEND;
        call.packet_type = type;
        call.sequence = sequence;
        call.status = takes_packet ? KDCOM_SHM_SEND_TAKES_PACKET : 0;
        call.header = body;
        return run([&] { EXPECT_FALSE(c.guest_call(call, now)); });
    }

    outputs receive(std::uint16_t type, std::uint32_t timeout_ms = 1000, std::uint32_t sequence = 2,
                    std::uint16_t header_capacity = kd::manipulate_header_size, std::uint16_t data_capacity = 4000) {
        shm::kd_pdu call;
        call.operation = KDCOM_SHM_PDU_RECEIVE;
        call.packet_type = type;
        call.sequence = sequence;
        call.status = timeout_ms;
        call.header_capacity = header_capacity;
        call.data_capacity = data_capacity;
        return run([&] { EXPECT_FALSE(c.guest_call(call, now)); });
    }

    outputs packet(std::uint16_t type, const bytes& body) {
        return run([&] { c.debugger_packet(static_cast<wire::packet_type>(type), body); });
    }

    core c;
    timestamp now{};
    bool breakin_pending = false;
    std::size_t readable = SIZE_MAX;
};

bytes read_request(std::uint64_t address, std::uint32_t count) { return sim::read_request(address, count); }

bytes physical_read_request(std::uint64_t address, std::uint32_t count) {
    kd::manipulate_header h;
    h.api = kd::manipulate_api::read_physical_memory;
    h.memory = {address, count, 0};
    return sim::manipulate_request(h);
}

TEST(BridgeCore, AGuestSendGoesToTheDebuggerAndIsAnsweredWhenAcknowledged) {
    core_rig rig;
    const bytes stop = sim::stop_report();
    auto o = rig.send(state_change, stop, false, 7);
    ASSERT_EQ(o.sends.size(), 1u);
    EXPECT_EQ(o.sends[0].purpose, send_purpose::guest);
    EXPECT_EQ(o.sent_bodies[0], stop);
    EXPECT_TRUE(o.answers.empty());  // not before the debugger has it

    o = rig.run([&] { rig.c.guest_send_finished(o.sends[0].id, true); });
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(o.answers[0].operation, KDCOM_SHM_PDU_SENT);
    EXPECT_EQ(o.answers[0].sequence, 7u);
    EXPECT_EQ(o.answers[0].status, KDCOM_SHM_SEND_ACKNOWLEDGED);
    EXPECT_EQ(rig.c.stats().packets_to_debugger, 1u);
}

TEST(BridgeCore, ASendTheEndpointGaveUpOnIsAnsweredGaveUp) {
    core_rig rig;
    auto o = rig.send(static_cast<std::uint16_t>(wire::packet_type::debug_io), sim::print_message("x"), false);
    o = rig.run([&] { rig.c.guest_send_finished(o.sends[0].id, false); });
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(o.answers[0].status, KDCOM_SHM_SEND_GAVE_UP);
}

TEST(BridgeCore, ASendThatTakesAPacketWaitsForTheTurnsEndAndCarriesTheRequestThatCameInIt) {
    core_rig rig;
    auto o = rig.send(state_change, sim::stop_report(), true);
    o = rig.run([&] { rig.c.guest_send_finished(o.sends[0].id, true); });
    EXPECT_TRUE(o.answers.empty());
    EXPECT_TRUE(rig.c.waits_for_turn_end());

    const bytes request = read_request(0x1000, 16);
    o = rig.packet(manipulate, request);  // in the same read as the acknowledgement
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(o.answers[0].status, KDCOM_SHM_SEND_ACKNOWLEDGED | KDCOM_SHM_SENT_CARRIES_PACKET);
    EXPECT_EQ(o.answers[0].packet_type, manipulate);
    EXPECT_EQ(o.answers[0].data, request);
    EXPECT_FALSE(rig.c.waits_for_turn_end());
    EXPECT_TRUE(rig.run([&] { rig.c.end_of_turn(); }).answers.empty());  // answered once
    EXPECT_EQ(rig.c.stats().packets_carried, 1u);
}

TEST(BridgeCore, ASendThatTakesAPacketIsAnsweredAloneAtTheTurnsEndIfNoneCame) {
    core_rig rig;
    auto o = rig.send(state_change, sim::stop_report(), true);
    rig.run([&] { rig.c.guest_send_finished(o.sends[0].id, true); });
    o = rig.run([&] { rig.c.end_of_turn(); });
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(o.answers[0].status, KDCOM_SHM_SEND_ACKNOWLEDGED);
    // The next request waits for a RECEIVE.
    EXPECT_TRUE(rig.packet(manipulate, read_request(0, 4)).answers.empty());
    o = rig.receive(manipulate);
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(o.answers[0].status, KDCOM_SHM_RECEIVE_OK);
}

TEST(BridgeCore, ARequestWaitingIsCarriedAtOnce) {
    core_rig rig;
    rig.packet(manipulate, read_request(0, 4));
    auto o = rig.send(manipulate, read_request(0, 4), true);
    o = rig.run([&] { rig.c.guest_send_finished(o.sends[0].id, true); });
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_NE(o.answers[0].status & KDCOM_SHM_SENT_CARRIES_PACKET, 0u);
    EXPECT_FALSE(rig.c.waits_for_turn_end());
}

TEST(BridgeCore, AReceiveGetsTheNextPacketOfItsTypeSplitAtTheHeaderCapacityAndOthersAreDropped) {
    core_rig rig;
    auto o = rig.receive(manipulate, 1000, 9);
    EXPECT_TRUE(o.answers.empty());
    EXPECT_TRUE(rig.packet(static_cast<std::uint16_t>(wire::packet_type::debug_io), sim::print_message("no")).answers.empty());
    const bytes request = read_request(0x2000, 100);
    o = rig.packet(manipulate, request);
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(o.answers[0].operation, KDCOM_SHM_PDU_RECEIVED);
    EXPECT_EQ(o.answers[0].sequence, 9u);
    EXPECT_EQ(o.answers[0].header, bytes(request.begin(), request.begin() + kd::manipulate_header_size));
    EXPECT_EQ(o.answers[0].data, bytes(request.begin() + kd::manipulate_header_size, request.end()));
    EXPECT_EQ(rig.c.stats().packets_dropped, 1u);
}

TEST(BridgeCore, APacketLargerThanTheGuestsBuffersIsAnsweredResendNotCut) {
    core_rig rig;
    rig.receive(manipulate, 1000, 2, kd::manipulate_header_size, 8);
    const auto o = rig.packet(manipulate, sim::manipulate_request({}, bytes(9)));
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(o.answers[0].status, KDCOM_SHM_RECEIVE_RESEND);
    EXPECT_TRUE(o.answers[0].data.empty());
}

TEST(BridgeCore, AReceiveTimesOutAtItsDeadline) {
    core_rig rig;
    rig.receive(manipulate, 250);
    ASSERT_TRUE(rig.c.deadline());
    EXPECT_EQ(*rig.c.deadline(), rig.now + 250ms);
    EXPECT_TRUE(rig.run([&] { rig.c.on_time(rig.now + 249ms); }).answers.empty());
    const auto o = rig.run([&] { rig.c.on_time(rig.now + 250ms); });
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(o.answers[0].status, KDCOM_SHM_RECEIVE_TIMEOUT);
    EXPECT_FALSE(rig.c.deadline());
}

TEST(BridgeCore, AResetEndsAPendingReceiveWithResendAndVoidsWhatTheOldDebuggerAsked) {
    core_rig rig;
    rig.packet(static_cast<std::uint16_t>(wire::packet_type::debug_io), sim::print_message("old"));
    auto o = rig.receive(manipulate);
    EXPECT_EQ(rig.c.stats().packets_dropped, 1u);
    o = rig.run([&] { rig.c.debugger_reset(false); });
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(o.answers[0].status, KDCOM_SHM_RECEIVE_RESEND);
    rig.packet(manipulate, read_request(0, 1));
    rig.run([&] { rig.c.debugger_reset(false); });
    o = rig.receive(manipulate, 1000, 3);
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(o.answers[0].status, KDCOM_SHM_RECEIVE_RESEND);  // the request went with the old conversation
}

TEST(BridgeCore, AResetBetweenCallsGoesToTheNextReceiveUnlessAStateChangeReachedTheNewDebugger) {
    core_rig rig;
    rig.run([&] { rig.c.debugger_reset(false); });
    auto o = rig.receive(manipulate);
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(o.answers[0].status, KDCOM_SHM_RECEIVE_RESEND);

    rig.run([&] { rig.c.debugger_reset(false); });
    o = rig.send(state_change, sim::stop_report(), false);  // the kernel breaks and reports first
    rig.run([&] { rig.c.guest_send_finished(o.sends[0].id, true); });
    o = rig.receive(manipulate, 1000, 4);
    EXPECT_TRUE(o.answers.empty());  // nothing to resend: the new debugger has the state
}

TEST(BridgeCore, AResetAfterTheEndpointFinishedAStateChangeStillAsksForItAgain) {
    core_rig rig;
    auto o = rig.send(state_change, sim::stop_report(), false);
    // The ACK and a RESET in one read: the reset is reported before the send's end.
    rig.run([&] { rig.c.debugger_reset(true); });
    rig.run([&] { rig.c.guest_send_finished(o.sends[0].id, true); });
    o = rig.receive(manipulate);
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(o.answers[0].status, KDCOM_SHM_RECEIVE_RESEND);
}

TEST(BridgeCore, ABreakinPollIsAnsweredAtOnce) {
    core_rig rig;
    auto o = rig.receive(static_cast<std::uint16_t>(wire::packet_type::poll_breakin), 0, 5);
    EXPECT_EQ(o.polls, 1u);
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(o.answers[0].status, KDCOM_SHM_RECEIVE_TIMEOUT);
    rig.breakin_pending = true;
    o = rig.receive(static_cast<std::uint16_t>(wire::packet_type::poll_breakin), 0, 6);
    ASSERT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(o.answers[0].status, KDCOM_SHM_RECEIVE_OK);
    EXPECT_EQ(o.answers[0].sequence, 6u);
}

TEST(BridgeCore, ThePhysicalReadFastPathAnswersTheDebuggerFromGuestMemoryWithoutTheGuest) {
    core_rig rig({.fast_path = true});
    rig.receive(manipulate);
    auto o = rig.packet(manipulate, physical_read_request(0x5000, 32));
    EXPECT_TRUE(o.answers.empty());  // the guest never sees it
    ASSERT_EQ(o.memory_reads, 1u);
    ASSERT_EQ(o.sends.size(), 1u);
    EXPECT_EQ(o.sends[0].purpose, send_purpose::fast_path);
    const auto reply = kd::decode_manipulate(o.sent_bodies[0]);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->return_status, kd::status::success);
    EXPECT_EQ(reply->memory.actual_bytes, 32u);
    for (std::size_t i = 0; i < 32; ++i)
        EXPECT_EQ(o.sent_bodies[0][kd::manipulate_header_size + i], sim::memory_byte(0x5000 + i));

    rig.readable = 0;  // nothing there
    o = rig.packet(manipulate, physical_read_request(0x6000, 32));
    EXPECT_EQ(kd::decode_manipulate(o.sent_bodies[0])->return_status, kd::status::unsuccessful);
    // A virtual read still goes to the guest.
    o = rig.packet(manipulate, read_request(0x5000, 32));
    EXPECT_EQ(o.memory_reads, 0u);
    EXPECT_EQ(o.answers.size(), 1u);
    EXPECT_EQ(rig.c.stats().fast_path_reads, 2u);
}

TEST(BridgeCore, AGuestThatLeavesHasItsSendCancelledAndIsNeverAnswered) {
    core_rig rig;
    auto o = rig.send(state_change, sim::stop_report(), true);
    const std::uint64_t old_id = o.sends[0].id;
    o = rig.run([&] { rig.c.guest_detached(false); });
    ASSERT_EQ(o.cancels.size(), 1u);
    EXPECT_EQ(o.cancels[0], old_id);
    // Its send's end comes anyway, after the next guest started its own.
    rig.c.guest_attached(8192);
    o = rig.send(state_change, sim::stop_report(), false, 1);
    const std::uint64_t new_id = o.sends[0].id;
    EXPECT_NE(new_id, old_id);
    EXPECT_TRUE(rig.run([&] { rig.c.guest_send_finished(old_id, true); }).answers.empty());
    EXPECT_EQ(rig.run([&] { rig.c.guest_send_finished(new_id, true); }).answers.size(), 1u);
}

TEST(BridgeCore, AGuestThatCallsOutOfTurnIsDetached) {
    core_rig rig;
    rig.send(state_change, sim::stop_report(), false);
    shm::kd_pdu again;
    again.operation = KDCOM_SHM_PDU_SEND;
    again.packet_type = state_change;
    EXPECT_EQ(rig.c.guest_call(again, rig.now), make_error_code(errc::shm_malformed_pdu));
    EXPECT_FALSE(rig.c.guest_attached());
    EXPECT_EQ(rig.drain().cancels.size(), 1u);
    EXPECT_EQ(rig.c.stats().guest_errors, 1u);

    core_rig other;
    shm::kd_pdu answer_kind;
    answer_kind.operation = KDCOM_SHM_PDU_SENT;  // answers travel the other way
    EXPECT_EQ(other.c.guest_call(answer_kind, other.now), make_error_code(errc::shm_malformed_pdu));
    EXPECT_EQ(other.c.guest_call(answer_kind, other.now), make_error_code(errc::shm_malformed_pdu));  // no guest
    EXPECT_EQ(other.c.stats().guest_errors, 1u);
}

TEST(BridgeCore, TheInboxIsBoundedAndSaysWhenItIsFull) {
    core_rig rig({.inbox_limit = 3});
    for (int i = 0; i < 3; ++i) rig.packet(manipulate, read_request(0, 1));
    EXPECT_FALSE(rig.c.wants_debugger_packets());
    rig.packet(manipulate, read_request(0, 2));
    EXPECT_EQ(rig.c.stats().packets_dropped, 1u);
    rig.receive(manipulate);
    EXPECT_TRUE(rig.c.wants_debugger_packets());
}

}  // namespace
