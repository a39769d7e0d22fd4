// libFuzzer target for the reliability state machine: a debugger endpoint and a target endpoint
// joined by two byte queues, with the fuzzer choosing everything that happens and in what order:
// which bytes are delivered and in what chunks, how far time moves (never backwards), sends,
// cancels, break-ins, reset requests, and faults on the wire: lost and duplicated writes, bytes
// dropped from the front of a wire, damaged bytes, injected noise.
//
// The faults stay within what KDCOM can detect at all (docs/protocol.md, "What KDCOM does not
// protect"): at most one damaged byte per frame and never in the type or id field, because the
// additive checksum misses damages that cancel out (+1 and -1) and the header is not covered; and
// injected noise holds no 0x00 or 0xAA, so that it cannot forge a valid frame.
//
// Invariants checked:
// - every write is exactly one well-formed frame (a packet or the break-in byte);
// - a delivered body is exactly one that was sent;
// - each side's deliveries never go backwards, and repeat a packet only if a reset happened
//   after it was first sent (across one, the packet in flight may arrive twice), or once a target
//   has restarted its ids with SYNC (one-way, so its effect arrives late);
// - after the input is used up, a clean-up phase (no more faults) finishes every send and the
//   handshake within bounded virtual time: no wedge that time cannot clear;
// - with implicit ACKs off, nothing is lost, unless a target restarted its ids with SYNC (a
//   one-way resynchronisation, lossy for the packets in flight in any KDCOM implementation), a
//   send was cancelled or given up (that packet may or may not arrive), or the debugger repeated
//   a RESET while an earlier one was still unanswered (with one RESET id for all, a slow answer
//   cannot be told from the last one);
// - the endpoints' memory stays bounded.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <utility>
#include <vector>

#include "kdcom/decode/decoder.hpp"
#include "kdcom/endpoint/endpoint.hpp"
#include "fuzz_choices.hpp"
#include "numbered_body.hpp"

namespace {
using namespace kdcom;
using namespace std::chrono_literals;
using bytes = std::vector<std::uint8_t>;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "endpoint invariant violated: %s\n", what);
    std::abort();
}

void check(bool ok, const char* what) {
    if (!ok) fail(what);
}

// Reads the fuzzer's choices; past the end it answers zeros.
using fuzz::choices;

using fuzz::numbered_body;

struct side {
    explicit side(const endpoint_config& c) : ep(c) {}

    endpoint ep;

    // The wire into this side. inbound[k] is byte `consumed + k` of everything ever appended.
    std::deque<std::uint8_t> inbound;
    std::uint64_t consumed = 0;
    std::uint64_t appended = 0;
    struct frame_record {
        std::uint64_t offset, size;
        bool damaged;
    };
    std::deque<frame_record> frames;  // frames on the wire, to keep damage to one byte each
    bool lose_next_write = false;
    bool duplicate_next_write = false;

    // The application.
    std::uint32_t next_sequence = 0;
    std::vector<std::uint32_t> resets_at_send;  // the pair's reset count when each was sent
    bool lost_allowed = false;  // a cancel or give-up happened
    bool have_last = false;
    std::uint32_t last_delivered = 0;
    std::uint32_t distinct_delivered = 0;
};

struct pair {
    pair(const endpoint_config& d, const endpoint_config& t) : debugger(d), target(t) {}

    side debugger, target;
    timestamp now{};
    std::uint32_t resets = 0;  // resets, resyncs and cancels so far, on either side
    bool target_sync_restart = false;  // the target restarted its ids with SYNC at some point

    side& other(side& s) { return &s == &debugger ? target : debugger; }

    void note_reset() { ++resets; }

    void drain(side& s) {
        side& peer = other(s);
        while (auto e = s.ep.next_event()) {
            if (auto* t = std::get_if<events::transmit>(&*e)) {
                check_frame(t->bytes(), s.ep.config().max_body);
                if (std::exchange(peer.lose_next_write, false)) continue;
                const int copies = std::exchange(peer.duplicate_next_write, false) ? 2 : 1;
                for (int copy = 0; copy < copies; ++copy) {
                    peer.frames.push_back({peer.appended, t->bytes().size(), false});
                    append(peer, t->bytes());
                }
            } else if (auto* p = std::get_if<events::packet_received>(&*e)) {
                on_delivery(s, peer, p->body);
            } else if (auto* c = std::get_if<events::send_completed>(&*e)) {
                if (c->result != events::send_completed::outcome::acknowledged) s.lost_allowed = true;
            } else if (std::holds_alternative<events::peer_reset>(*e)) {
                note_reset();
            }
        }
    }

    void on_delivery(side& s, const side& sender, std::span<const std::uint8_t> body) const {
        check(body.size() >= 8, "delivered a body that was never sent");
        std::uint32_t sequence;
        std::memcpy(&sequence, body.data(), 4);
        const bytes expected = numbered_body(sequence, body.size());
        check(std::equal(body.begin(), body.end(), expected.begin(), expected.end()),
              "delivered a body that differs from what was sent");
        check(sequence < sender.next_sequence, "delivered a packet that was never sent");
        if (s.have_last) {
            check(sequence >= s.last_delivered, "delivery went backwards");
            check(sequence != s.last_delivered || sender.resets_at_send[sequence] < resets || target_sync_restart,
                  "duplicate delivery without a reset since it was sent");
        }
        if (!s.have_last || sequence != s.last_delivered) ++s.distinct_delivered;
        s.have_last = true;
        s.last_delivered = sequence;
    }

    // A write must be exactly one frame: a valid packet or the single break-in byte.
    static void check_frame(std::span<const std::uint8_t> b, std::size_t max_body) {
        decode::decoder d(decode::options{max_body});
        d.push(b);
        d.finish();
        int frames = 0;
        while (auto e = d.next()) {
            check(!std::holds_alternative<decode::garbage>(*e) && !std::holds_alternative<decode::framing_error>(*e),
                  "a malformed frame was written");
            ++frames;
        }
        check(frames == 1, "a write held other than one frame");
    }

    static void append(side& s, std::span<const std::uint8_t> b) {
        s.inbound.insert(s.inbound.end(), b.begin(), b.end());
        s.appended += b.size();
    }

    // Removes and returns the first n bytes on the wire into `s`.
    static bytes take(side& s, std::size_t n) {
        n = std::min(n, s.inbound.size());
        bytes out(s.inbound.begin(), s.inbound.begin() + static_cast<long>(n));
        s.inbound.erase(s.inbound.begin(), s.inbound.begin() + static_cast<long>(n));
        s.consumed += n;
        while (!s.frames.empty() && s.frames.front().offset + s.frames.front().size <= s.consumed)
            s.frames.pop_front();
        return out;
    }

    // Damages the byte `at` places into the wire, unless its frame was damaged already or the
    // byte is in a frame's type or id field.
    static void damage(side& s, std::size_t at, std::uint8_t mask) {
        if (at >= s.inbound.size()) return;
        const std::uint64_t offset = s.consumed + at;
        for (auto& f : s.frames) {
            if (offset < f.offset || offset >= f.offset + f.size) continue;
            const std::uint64_t field = offset - f.offset;
            if (f.damaged || (field >= 4 && field < 6) || (field >= 8 && field < 12)) return;
            f.damaged = true;
        }
        s.inbound[at] ^= mask;
    }

    void deliver(side& s, std::size_t n) {
        const bytes chunk = take(s, n);
        if (chunk.empty()) return;
        s.ep.receive(chunk, now);
        drain(s);
    }

    void advance(timestamp d) {
        now += d;
        for (side* s : {&debugger, &target}) {
            s->ep.on_time(now);
            drain(*s);
        }
    }

    void send(side& s, std::size_t size) {
        if (s.ep.send_in_progress()) return;
        static constexpr wire::packet_type types[] = {wire::packet_type::state_manipulate,
                                                      wire::packet_type::state_change64,
                                                      wire::packet_type::debug_io};
        const bytes body = numbered_body(s.next_sequence, size % 4001);
        const auto ec = s.ep.send(types[s.next_sequence % 3], body, {}, now);
        check(!ec, "a valid send was refused");
        ++s.next_sequence;
        s.resets_at_send.push_back(resets);
        drain(s);
    }

    // No more faults: deliver everything and let time run until all is quiet.
    void clean_up() {
        for (int round = 0; round < 4000; ++round) {
            deliver(debugger, debugger.inbound.size());
            deliver(target, target.inbound.size());
            const bool busy = debugger.ep.send_in_progress() || target.ep.send_in_progress() ||
                              debugger.ep.handshake_pending() || !debugger.inbound.empty() ||
                              !target.inbound.empty();
            if (!busy) return;
            std::optional<timestamp> next;
            for (side* s : {&debugger, &target})
                if (auto d = s->ep.deadline(); d && (!next || *d < *next)) next = d;
            advance(next && *next > now ? *next - now : timestamp(1ms));
        }
        fail("wedged: sends or the handshake never finished on a clean link");
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    choices in(data, size);
    const std::uint8_t setup = in.byte();
    endpoint_config d{.role = role::debugger}, t{.role = role::target};
    d.send_resets = (setup & 1) != 0;
    d.implicit_ack = t.implicit_ack = (setup & 2) != 0;
    d.strict_breakin = t.strict_breakin = (setup & 4) != 0;
    d.trace_io_droppable = t.trace_io_droppable = false;
    pair p(d, t);

    for (int steps = 0; in.more() && steps < 2000; ++steps) {
        const std::uint8_t op = in.byte();
        side& s = (op & 0x80) ? p.target : p.debugger;
        switch (op % 12) {
        case 0: case 1: p.deliver(s, 1 + in.byte() * 8u); break;
        case 2: p.advance(timestamp(std::chrono::milliseconds(in.byte() * 10))); break;
        case 3: case 4: p.send(s, in.u16()); break;
        case 5:
            p.debugger.ep.send_breakin(p.now);
            p.drain(p.debugger);
            break;
        case 6: (void)p.target.ep.poll_breakin(); break;
        case 7: pair::take(s, in.byte()); break;  // bytes vanish from the front of a wire
        case 8: {                                 // one byte is damaged in flight
            const std::size_t at = s.inbound.empty() ? 0 : in.u16() % s.inbound.size();
            pair::damage(s, at, static_cast<std::uint8_t>(1 + in.byte() % 255));
            break;
        }
        case 9: {  // line noise: stray leaders, 'b's, partial headers
            bytes noise(in.byte() % 32);
            for (auto& b : noise) {
                b = in.byte();
                if (b == 0x00 || b == wire::trailer_byte) b = 0x01;
            }
            pair::append(s, noise);
            break;
        }
        case 10:
            s.ep.start_reset(p.now);
            p.note_reset();
            if (&s == &p.target) {  // a SYNC restart
                p.debugger.lost_allowed = p.target.lost_allowed = true;
                p.target_sync_restart = true;
            }
            p.drain(s);
            break;
        case 11:
            switch (in.byte() % 4) {
            case 0:
                if (s.ep.send_in_progress()) {
                    s.ep.cancel_send(p.now);  // a target restarts with SYNC, a debugger with RESET
                    s.lost_allowed = true;
                    if (&s == &p.target) {
                        p.debugger.lost_allowed = true;
                        p.target_sync_restart = true;
                    }
                    p.note_reset();
                    p.drain(s);
                }
                break;
            case 1: s.lose_next_write = true; break;  // flags of the wire into `s`
            default: s.duplicate_next_write = true; break;
            }
            break;
        }
        check(s.ep.memory_in_use() < (1u << 20), "endpoint memory grew without bound");
    }

    p.clean_up();
    // A RESET repeated while an earlier one was still on its way can be answered after the
    // handshake ended on the older answer: with one RESET id for all, nothing tells them apart,
    // and the target's late restart of its ids can then lose a packet.
    if (p.debugger.ep.stats().resets_presumed_lost > 0) p.debugger.lost_allowed = p.target.lost_allowed = true;
    if (!d.implicit_ack) {
        for (side* s : {&p.debugger, &p.target}) {
            if (s->lost_allowed) continue;
            check(p.other(*s).distinct_delivered == s->next_sequence, "a packet was lost");
        }
    }
    return 0;
}
