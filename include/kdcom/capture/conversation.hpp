// The conversation a capture holds: the data packets each side meant to send, in the order they
// went, each once. Retransmissions (the same packet again before the peer acknowledged it, under
// the same id or, after a reset, under a new one) are folded into the first sending; control
// packets, break-ins and garbage are the protocol's business and are left out.
//
// Sans-I/O: push records in capture order, take packets out. Used by kdcom-replay to turn a
// capture into something to play again.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <variant>
#include <vector>

#include "kdcom/capture/record.hpp"
#include "kdcom/decode/decoder.hpp"

namespace kdcom::capture {

struct conversation_packet {
    flow direction = flow::debugger_to_target;
    wire::packet_type type{};
    std::uint32_t id = 0;
    std::vector<std::uint8_t> body;
    std::uint64_t time_ns = 0;  // when the record that completed it was captured
};

class conversation {
public:
    explicit conversation(decode::options options = {}) : sides_{side(options), side(options)} {}

    void push(const record& r) {
        side& s = sides_[index(r.direction)];
        s.decoder.push(r.bytes);
        drain(r.direction, r.time_ns);
    }

    // The end of the capture: a packet cut off by it is not part of the conversation.
    void finish(std::uint64_t time_ns = 0) {
        for (flow f : {flow::debugger_to_target, flow::target_to_debugger}) {
            sides_[index(f)].decoder.finish();
            drain(f, time_ns);
        }
    }

    std::optional<conversation_packet> next() {
        if (ready_.empty()) return std::nullopt;
        auto p = std::move(ready_.front());
        ready_.pop_front();
        return p;
    }

    std::uint64_t retransmissions_folded() const { return folded_; }

private:
    struct side {
        explicit side(decode::options o) : decoder(o) {}
        decode::decoder decoder;
        std::optional<conversation_packet> last;  // the last data packet this side sent
        bool last_acknowledged = false;
    };

    static std::size_t index(flow f) { return f == flow::debugger_to_target ? 0 : 1; }
    static flow other(flow f) {
        return f == flow::debugger_to_target ? flow::target_to_debugger : flow::debugger_to_target;
    }

    void drain(flow f, std::uint64_t time_ns) {
        side& s = sides_[index(f)];
        while (auto e = s.decoder.next()) {
            if (const auto* c = std::get_if<decode::control_packet>(&*e)) {
                // An acknowledgement of the other side's last packet: a later copy is a new packet.
                side& peer = sides_[index(other(f))];
                if (c->header.type == wire::packet_type::acknowledge && peer.last && peer.last->id == c->header.id)
                    peer.last_acknowledged = true;
                continue;
            }
            const auto* d = std::get_if<decode::data_packet>(&*e);
            if (!d) continue;
            if (s.last && !s.last_acknowledged && s.last->type == d->header.type &&
                std::equal(s.last->body.begin(), s.last->body.end(), d->body.begin(), d->body.end())) {
                ++folded_;
                s.last->id = d->header.id;  // the peer acknowledges the latest id
                continue;
            }
            conversation_packet p{f, d->header.type, d->header.id, {d->body.begin(), d->body.end()}, time_ns};
            s.last = p;
            s.last_acknowledged = false;
            ready_.push_back(std::move(p));
        }
    }

    side sides_[2];
    std::deque<conversation_packet> ready_;
    std::uint64_t folded_ = 0;
};

}  // namespace kdcom::capture
