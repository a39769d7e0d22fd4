// The session's rules (session/core.hpp) under any order of events: a debugger and a target
// session (sim::session_node, the core run as net::session runs it) with small queue bounds,
// sending numbered packets to each other, while the fuzzer decides what happens next: a send, a
// write delivered whole, cut, in pieces, twice or not at all, time passing, an application taking a
// packet or leaving it, a peer that stops reading, a stream that ends and opens again.
//
// Invariants, checked after every step:
// - a packet taken is one that was sent, intact (the line here never forges bytes);
// - the write queue stays within its bound (or one frame, if that is larger);
// - no more sends end than were accepted;
// and after a quiet phase (a clean line, both applications taking, ten virtual minutes): every
// accepted send ended, packets were taken in order (a packet may come again across a reset), and,
// unless a stream was reopened, every packet sent was taken. A reopened stream restarts the ids
// (a debugger's RESET, perhaps while an earlier one is unanswered), and KDCOM's one-bit ids then
// cannot tell a late repeat from the next packet in any implementation (fuzz/endpoint_pair_fuzz.cpp
// and docs/protocol.md say which resets lose what).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "kdcom/sim/session_node.hpp"
#include "fuzz_choices.hpp"
#include "numbered_body.hpp"

namespace {
using namespace kdcom;
using namespace std::chrono_literals;
using fuzz::choices;
using fuzz::number_of;
using fuzz::numbered_body;
using bytes = std::vector<std::uint8_t>;

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
    std::fprintf(stderr, "session invariant violated: %s %s\n", what, detail.c_str());
    std::abort();
}

struct side {
    side(role r, choices& c) {
        session::options o;
        o.receive_queue_limit = 1 + c.byte() % 4;
        o.write_queue_limit = 512 + c.u16() % 8192;
        o.ack_delay = std::chrono::milliseconds(c.byte() % 4 == 0 ? c.byte() % 50 : 0);
        node = std::make_unique<sim::session_node>(endpoint_config{.role = r, .implicit_ack = false}, o);
    }
    std::unique_ptr<sim::session_node> node;
    std::vector<bytes> sent;
    std::deque<bytes> in_flight;  // writes on their way to the other side
};

class harness {
public:
    explicit harness(choices& c) : debugger_(role::debugger, c), target_(role::target, c) {
        target_.node->start(now_);
        debugger_.node->start(now_);
        collect();
    }

    void step(choices& c) {
        side& s = c.byte() % 2 ? debugger_ : target_;
        side& other = &s == &debugger_ ? target_ : debugger_;
        switch (c.byte() % 10) {
        case 0:
        case 1: send(s, c.u16() % (wire::default_max_body + 1)); break;
        case 2:
        case 3: deliver(s, other, c); break;
        case 4: advance(std::chrono::milliseconds(c.u16() % 3000)); break;
        case 5: s.node->take_one(); break;
        case 6: s.node->takes_packets = !s.node->takes_packets; break;
        case 7:
            if (s.node->peer_reads) s.node->peer_reads = false;
            else s.node->resume_peer_reads();
            break;
        case 8:
            s.node->reopen_stream();
            reopened_ = true;
            break;
        case 9: advance_to_deadline(); break;
        }
        collect();
        check();
    }

    // A clean line, both applications taking, ten virtual minutes: everything must get through.
    void quiet_phase() {
        for (side* s : {&debugger_, &target_}) {
            s->node->takes_packets = true;
            while (s->node->take_one()) {}
            s->node->resume_peer_reads();
        }
        collect();
        const auto end = now_ + 600s;
        while (now_ < end) {
            while (!debugger_.in_flight.empty() || !target_.in_flight.empty()) {
                deliver_all(debugger_, target_);
                deliver_all(target_, debugger_);
                collect();
            }
            if (done()) break;
            if (!advance_to_deadline()) break;
            collect();
            check();
        }
        for (side* s : {&debugger_, &target_}) {
            if (s->node->finished().size() != s->node->sends_accepted())
                fail("a send never ended", std::to_string(s->node->finished().size()) + " of " +
                                               std::to_string(s->node->sends_accepted()));
        }
        check_in_order(debugger_, target_);
        check_in_order(target_, debugger_);
    }

private:
    void send(side& s, std::size_t size) {
        const auto body = numbered_body(static_cast<std::uint32_t>(s.sent.size()), size);
        const auto type = &s == &debugger_ ? wire::packet_type::state_manipulate : wire::packet_type::state_change64;
        if (s.node->send(type, body)) fail("a valid send was refused");
        s.sent.push_back(body);
    }

    // Delivers the oldest write from `from` to `to`: whole, cut short, in two reads, twice, or lost.
    void deliver(side& from, side& to, choices& c) {
        if (from.in_flight.empty()) return;
        bytes w = std::move(from.in_flight.front());
        from.in_flight.pop_front();
        switch (c.byte() % 8) {
        case 0: return;  // lost
        case 1: w.resize(w.size() * c.byte() / 256); break;
        case 2: {
            const std::size_t cut = w.empty() ? 0 : c.u16() % w.size();
            to.node->receive(std::span(w).first(cut), now_);
            collect();
            to.node->receive(std::span(w).subspan(cut), now_);
            return;
        }
        case 3: to.node->receive(w, now_); break;  // and again below
        default: break;
        }
        to.node->receive(w, now_);
    }

    void deliver_all(side& from, side& to) {
        while (!from.in_flight.empty()) {
            const bytes w = std::move(from.in_flight.front());
            from.in_flight.pop_front();
            to.node->receive(w, now_);
        }
    }

    void advance(timestamp by) {
        now_ += by;
        for (side* s : {&debugger_, &target_})
            if (auto d = s->node->deadline(); d && *d <= now_) s->node->on_time(now_);
    }

    bool advance_to_deadline() {
        const auto next = earliest({debugger_.node->deadline(), target_.node->deadline()});
        if (!next) return false;
        advance(std::max(timestamp::zero(), *next - now_));
        return true;
    }

    void collect() {
        for (side* s : {&debugger_, &target_})
            for (auto& w : s->node->take_writes()) s->in_flight.push_back(std::move(w));
    }

    void check() const {
        for (const side* s : {&debugger_, &target_}) {
            const auto& c = s->node->core();
            const std::size_t bound = std::max(c.settings().write_queue_limit, wire::data_packet_size(wire::default_max_body));
            if (c.bytes_unwritten() > bound) fail("the write queue passed its bound");
            if (s->node->finished().size() > s->node->sends_accepted()) fail("more sends ended than were accepted");
        }
        check_intact(debugger_, target_);
        check_intact(target_, debugger_);
    }

    static void check_intact(const side& from, const side& to) {
        for (const auto& p : to.node->taken()) {
            const auto s = number_of(p.body);
            if (s >= from.sent.size() || p.body != from.sent[s]) fail("a packet taken was never sent");
        }
    }

    // Packets taken never skip ahead (a packet may come again across a reset: ids restart), and
    // without a reopened stream every packet sent was taken.
    void check_in_order(const side& from, const side& to) const {
        std::size_t next = 0;
        for (const auto& p : to.node->taken()) {
            const auto s = number_of(p.body);
            if (s == next) ++next;
            else if (s > next && !reopened_) fail("a packet was skipped", std::to_string(next) + " before " + std::to_string(s));
            else if (s > next) next = s + 1;
        }
        if (next != from.sent.size() && !reopened_)
            fail("not every packet was taken", std::to_string(next) + " of " + std::to_string(from.sent.size()));
    }

    bool done() const {
        for (const side* s : {&debugger_, &target_})
            if (s->node->finished().size() != s->node->sends_accepted()) return false;
        return true;
    }

    side debugger_, target_;
    timestamp now_{};
    bool reopened_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    choices c(data, size);
    harness h(c);
    for (int steps = 0; c.more() && steps < 2000; ++steps) h.step(c);
    h.quiet_phase();
    return 0;
}
