// Drives one endpoint from a scripted peer: the test plays the other side by hand, and everything
// the endpoint writes is decoded back into packets for assertions.
#pragma once

#include <chrono>
#include <vector>

#include "kdcom/endpoint/endpoint.hpp"
#include "support/decode_helpers.hpp"

namespace kdcom::test {

using namespace std::chrono_literals;

struct wire_packet {
    bool control = false;
    bool breakin = false;
    wire::packet_type type{};
    std::uint32_t id = 0;
    bytes body;
};

class endpoint_harness {
public:
    explicit endpoint_harness(endpoint_config config) : ep(config) {}

    // Feeds bytes from the peer.
    void receive(std::span<const std::uint8_t> b) {
        ep.receive(b, now);
        drain();
    }
    void receive_ack(std::uint32_t id) { receive(control_frame(wire::packet_type::acknowledge, id)); }
    void receive_resend() { receive(control_frame(wire::packet_type::resend, 0)); }
    void receive_reset(std::uint32_t id = 0) { receive(control_frame(wire::packet_type::reset, id)); }
    void receive_data(wire::packet_type type, std::uint32_t id, const bytes& body) {
        receive(data_frame(type, id, body));
    }

    std::error_code send(wire::packet_type type, const bytes& body) {
        auto ec = ep.send(type, body, {}, now);
        drain();
        return ec;
    }

    // Lets `d` of time pass, running every timer that falls due on the way.
    void wait(timestamp d) {
        const timestamp until = now + d;
        while (auto deadline = ep.deadline()) {
            if (*deadline > until) break;
            now = std::max(now, *deadline);
            ep.on_time(now);
            drain();
        }
        now = until;
        ep.on_time(now);
        drain();
    }

    void start() {
        ep.on_time(now);
        drain();
    }

    // What the endpoint wrote since the last call, as packets (a lone 'b' is a break-in).
    std::vector<wire_packet> written() {
        std::vector<wire_packet> out;
        decode::decoder d(decode::options{ep.config().max_body});
        d.push(tx_);
        d.finish();
        while (auto e = d.next()) {
            if (auto* p = std::get_if<decode::data_packet>(&*e))
                out.push_back({false, false, p->header.type, p->header.id, bytes(p->body.begin(), p->body.end())});
            else if (auto* c = std::get_if<decode::control_packet>(&*e))
                out.push_back({true, false, c->header.type, c->header.id, {}});
            else if (std::holds_alternative<decode::breakin>(*e))
                out.push_back({false, true, {}, 0, {}});
        }
        tx_.clear();
        return out;
    }

    endpoint ep;
    timestamp now{};
    std::vector<events::packet_received> received_headers;
    std::vector<bytes> received_bodies;
    std::vector<events::send_completed> completions;
    std::vector<events::peer_reset> resets;
    std::vector<events::link_state> links;
    std::size_t breakin_events = 0;

private:
    void drain() {
        while (auto e = ep.next_event()) {
            if (auto* t = std::get_if<events::transmit>(&*e)) {
                append(tx_, t->bytes());
            } else if (auto* p = std::get_if<events::packet_received>(&*e)) {
                received_headers.push_back(*p);
                received_bodies.emplace_back(p->body.begin(), p->body.end());
            } else if (auto* c = std::get_if<events::send_completed>(&*e)) {
                completions.push_back(*c);
            } else if (auto* r = std::get_if<events::peer_reset>(&*e)) {
                resets.push_back(*r);
            } else if (auto* l = std::get_if<events::link_changed>(&*e)) {
                links.push_back(l->state);
            } else if (std::holds_alternative<events::breakin_pending>(*e)) {
                ++breakin_events;
            }
        }
    }

    bytes tx_;
};

inline constexpr std::uint32_t id0 = wire::initial_packet_id;
inline constexpr std::uint32_t id1 = wire::initial_packet_id | 1;
inline constexpr std::uint32_t sync_bit = wire::sync_packet_id;

inline endpoint_config target_config() { return {.role = role::target}; }
inline endpoint_config debugger_config() { return {.role = role::debugger}; }
inline endpoint_config quiet_debugger_config() { return {.role = role::debugger, .send_resets = false}; }

// A DbgPrint message: DBGKD_DEBUG_IO with DbgKdPrintStringApi, then the text.
inline bytes print_string(const std::string& text) {
    bytes b(16 + text.size(), 0);
    b[0] = 0x30;
    b[1] = 0x32;
    std::copy(text.begin(), text.end(), b.begin() + 16);
    return b;
}

// A manipulate request or reply body (0x38-byte header; the ApiNumber is enough here).
inline bytes manipulate(std::uint16_t api = 0x3146) {
    bytes b(0x38, 0);
    b[0] = static_cast<std::uint8_t>(api);
    b[1] = static_cast<std::uint8_t>(api >> 8);
    return b;
}

}  // namespace kdcom::test
