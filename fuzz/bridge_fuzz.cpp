// libFuzzer target for the bridge's rules (kdcom/bridge/core.hpp): the fuzzer plays the runner, the
// guest and the debugger at once, in any order: guest calls of every kind (well-formed or not,
// any type, flags, capacities and timeouts), debugger packets (fast-path reads among them), ends of
// sends (current, stale or unknown ids; acknowledged or not), resets, turns, time, and guests
// leaving and coming back.
//
// Invariants checked, against a model of what the guest has asked:
// - every answer is to a call of this guest that is waiting, of the right kind and sequence, and
//   ends it: each call is answered at most once, nothing unasked is answered, nothing after the
//   guest left;
// - a call the rules refuse detaches the guest, and a well-formed call of an attached guest that
//   keeps the rules is accepted;
// - RECEIVED answers fit the buffers the guest gave;
// - no wedge: at the end, once the debugger has finished the guest's send, the turn has ended and
//   every timeout has passed, no call is left unanswered;
// - the inbox never holds more than its limit.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

#include "kdcom/bridge/core.hpp"
#include "fuzz_choices.hpp"

namespace {
using namespace kdcom;
using namespace std::chrono_literals;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "bridge invariant violated: %s\n", what);
    std::abort();
}

void check(bool ok, const char* what) {
    if (!ok) fail(what);
}

using fuzz::choices;

// The guest as the fuzzer plays it: which of its calls wait for an answer.
struct guest_model {
    bool attached = true;
    std::optional<std::uint32_t> send, receive, poll;  // sequences
    std::uint16_t header_capacity = 0, data_capacity = 0;
    std::uint16_t receive_type = 0;
    std::optional<std::uint64_t> send_id;  // the core's id for the guest's send, while in the endpoint
    std::uint32_t sequence = 0;

    void forget() {
        send.reset();
        receive.reset();
        poll.reset();
        send_id.reset();
    }
};

class harness {
public:
    explicit harness(const bridge::core_config& config)
        : core_(config), limit_(std::max<std::size_t>(config.inbox_limit, 1)), max_body_(config.max_body) {
        core_.guest_attached(max_message);
    }

    void run(choices& c) {
        while (c.more()) step(c);
        quiet_phase();
    }

private:
    static constexpr std::size_t max_message = 4096 + shm::kd_pdu_fixed_size;

    void step(choices& c) {
        switch (c.byte() % 12) {
        case 0: guest_send(c); break;
        case 1: guest_receive(c); break;
        case 2: guest_poll(); break;
        case 3: guest_breaks_rules(c); break;
        case 4: debugger_packet(c); break;
        case 5: {  // the end of a send: the guest's, or one the core does not know
            const std::uint64_t id = model_.send_id && c.byte() % 4 ? *model_.send_id : c.byte();
            const bool acknowledged = c.byte() % 2;
            if (model_.send_id && id == *model_.send_id) model_.send_id.reset();
            core_.guest_send_finished(id, acknowledged);
            break;
        }
        case 6: core_.debugger_reset(c.byte() % 2); break;
        case 7: core_.end_of_turn(); break;
        case 8:
            now_ += std::chrono::milliseconds(c.byte() * 8);
            core_.on_time(now_);
            break;
        case 9:
            core_.guest_detached(c.byte() % 2);
            model_.attached = false;
            model_.forget();
            break;
        case 10:
            core_.guest_attached(max_message);
            model_ = {};
            break;
        case 11: core_.debugger_packet(wire::packet_type::state_manipulate, read_request(c, true)); break;
        }
        drain(c);
        check(core_.packets_held() <= limit_, "the inbox holds more than its limit");
        check(core_.wants_debugger_packets() == (core_.packets_held() < limit_), "the inbox's room misreported");
    }

    shm::kd_pdu call(std::uint16_t operation, std::uint16_t type) {
        shm::kd_pdu p;
        p.operation = operation;
        p.packet_type = type;
        p.sequence = ++model_.sequence;
        return p;
    }

    std::uint16_t packet_type(choices& c) {
        static constexpr std::uint16_t types[] = {2, 3, 7, 11, 1, 0};  // manipulate, print, state change, file io, ...
        return types[c.byte() % std::size(types)];
    }

    void guest_send(choices& c) {
        shm::kd_pdu p = call(KDCOM_SHM_PDU_SEND, packet_type(c));
        p.status = c.byte() % 2 ? KDCOM_SHM_SEND_TAKES_PACKET : 0;
        body_.assign(c.byte(), 0x5A);
        p.header = body_;
        accept_or_refuse(p, !model_.send.has_value());
        if (model_.attached && !core_refused_) model_.send = p.sequence;
    }

    void guest_receive(choices& c) {
        shm::kd_pdu p = call(KDCOM_SHM_PDU_RECEIVE, packet_type(c));
        p.status = c.byte();  // ms
        p.header_capacity = static_cast<std::uint16_t>(c.byte() % 2 ? kd::manipulate_header_size : c.byte());
        p.data_capacity = c.u16() % 4097;
        const bool allowed = !model_.receive.has_value();
        accept_or_refuse(p, allowed);
        if (model_.attached && !core_refused_) {
            model_.receive = p.sequence;
            model_.receive_type = p.packet_type;
            model_.header_capacity = p.header_capacity;
            model_.data_capacity = p.data_capacity;
        }
    }

    void guest_poll() {
        shm::kd_pdu p = call(KDCOM_SHM_PDU_RECEIVE, static_cast<std::uint16_t>(wire::packet_type::poll_breakin));
        accept_or_refuse(p, !model_.poll.has_value());
        if (model_.attached && !core_refused_) model_.poll = p.sequence;
    }

    void guest_breaks_rules(choices& c) {
        shm::kd_pdu p = call(static_cast<std::uint16_t>(c.byte() % 2 ? KDCOM_SHM_PDU_SENT : KDCOM_SHM_PDU_RECEIVED + 1 + c.byte()),
                             packet_type(c));
        accept_or_refuse(p, false);
    }

    // Gives the core a call; it must accept it exactly when the guest is attached and `allowed`.
    void accept_or_refuse(const shm::kd_pdu& p, bool allowed) {
        const bool refused = static_cast<bool>(core_.guest_call(p, now_));
        core_refused_ = refused;
        check(refused == !(model_.attached && allowed), refused ? "a call that keeps the rules was refused"
                                                                : "a call that breaks the rules was accepted");
        if (refused && model_.attached) {
            check(!core_.guest_attached(), "a guest that broke the rules is still attached");
            model_.attached = false;
            model_.forget();
        }
    }

    std::vector<std::uint8_t> read_request(choices& c, bool physical) {
        kd::manipulate_header h;
        h.api = physical ? kd::manipulate_api::read_physical_memory : kd::manipulate_api::read_virtual_memory;
        h.memory.address = c.u16();
        h.memory.transfer_count = c.u16();
        std::vector<std::uint8_t> body(kd::manipulate_header_size);
        kd::encode_manipulate(h, body);
        return body;
    }

    void debugger_packet(choices& c) {
        const std::uint16_t type = packet_type(c);
        std::vector<std::uint8_t> body = c.byte() % 2 ? read_request(c, false) : std::vector<std::uint8_t>(c.u16() % 4200, 0xA5);
        core_.debugger_packet(static_cast<wire::packet_type>(type), body);
    }

    void drain(choices& c) {
        while (auto e = core_.next_event()) {
            if (auto* a = std::get_if<bridge::bridge_events::answer_guest>(&*e)) {
                on_answer(a->pdu);
            } else if (auto* s = std::get_if<bridge::bridge_events::send_to_debugger>(&*e)) {
                if (s->purpose == bridge::send_purpose::guest) {
                    check(model_.attached && model_.send && !model_.send_id, "a send to the debugger nobody asked for");
                    model_.send_id = s->id;
                } else {
                    check(s->header.size() + s->data.size() <= std::max(max_body_, kd::manipulate_header_size),
                          "a fast-path reply larger than the limit");
                }
            } else if (auto* x = std::get_if<bridge::bridge_events::cancel_guest_send>(&*e)) {
                (void)x;
            } else if (std::holds_alternative<bridge::bridge_events::poll_breakin>(*e)) {
                core_.breakin_polled(c.byte() % 2);
            } else if (auto* r = std::get_if<bridge::bridge_events::read_guest_memory>(&*e)) {
                for (auto& b : r->into) b = 0xEE;
                core_.guest_memory_read(c.u16());
            }
        }
    }

    void on_answer(const shm::kd_pdu& a) {
        check(model_.attached, "an answer to a guest that has left");
        if (a.operation == KDCOM_SHM_PDU_SENT) {
            check(model_.send == a.sequence, "a SENT for no SEND waiting");
            check(!model_.send_id, "a SENT before the debugger finished the send");
            check(shm::kd_pdu_size(a) <= max_message, "an answer larger than the guest takes");
            model_.send.reset();
            return;
        }
        check(a.operation == KDCOM_SHM_PDU_RECEIVED, "an answer of an unknown kind");
        if (a.packet_type == static_cast<std::uint16_t>(wire::packet_type::poll_breakin)) {
            check(model_.poll == a.sequence, "a poll answered that was not asked");
            model_.poll.reset();
            return;
        }
        check(model_.receive == a.sequence && a.packet_type == model_.receive_type, "a RECEIVED for no RECEIVE waiting");
        check(a.header.size() <= model_.header_capacity && a.data.size() <= model_.data_capacity,
              "a RECEIVED larger than the guest's buffers");
        model_.receive.reset();
    }

    // The quiet phase: the debugger finishes the guest's send, the turn ends, every timeout passes.
    void quiet_phase() {
        choices none(nullptr, 0);
        if (model_.send_id) {
            core_.guest_send_finished(*model_.send_id, true);
            model_.send_id.reset();
        }
        drain(none);
        core_.end_of_turn();
        drain(none);
        now_ += 300s;  // past the longest RECEIVE timeout (255 ms)
        core_.on_time(now_);
        drain(none);
        if (model_.attached) {
            check(!model_.send, "a SEND left unanswered after the quiet phase");
            check(!model_.receive, "a RECEIVE left unanswered after the quiet phase");
            check(!model_.poll, "a poll left unanswered");
        }
        check(!core_.deadline(), "a deadline with nothing waiting");
    }

    bridge::core core_;
    std::size_t limit_;
    std::size_t max_body_;
    guest_model model_;
    timestamp now_{};
    std::vector<std::uint8_t> body_;
    bool core_refused_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    choices c(data, size);
    bridge::core_config config;
    config.fast_path = c.byte() % 2;
    config.inbox_limit = c.byte() % 8;
    config.max_body = 64 + c.u16() % 4096;
    harness h(config);
    h.run(c);
    return 0;
}
