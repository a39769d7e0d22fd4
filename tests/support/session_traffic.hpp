// Numbered traffic between two sessions, for the transport tests: independent streams of packets
// each way (some 4000-byte bodies), with what arrived collected for check_deliveries().
#pragma once

#include <chrono>
#include <memory>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "kdcom/net/session.hpp"
#include "support/session_checks.hpp"

namespace kdcom::test {

// Independent streams in both directions: implicit ACKs would be wrong here.
inline endpoint_config streaming() {
    using namespace std::chrono_literals;
    endpoint_config c;
    c.implicit_ack = false;
    c.ack_timeout = 200ms;
    c.read_timeout = 200ms;
    c.reset_interval = 200ms;
    return c;
}

// Sends `count` numbered packets from `from` and collects what `to` receives.
struct traffic {
    std::vector<bytes> sent;
    std::vector<sim::delivered_packet> received;
    std::size_t acknowledged = 0;
    std::error_code first_error;

    void start(const std::shared_ptr<net::session>& from, const std::shared_ptr<net::session>& to, std::size_t count) {
        for (std::uint32_t i = 0; i < count; ++i) {
            sent.push_back(numbered_body(i, i % 10 == 0 ? 4000 : 64 + i % 300));
            from->async_send(i % 2 ? wire::packet_type::state_manipulate : wire::packet_type::state_change64, sent.back(), {},
                             [this](std::error_code ec) {
                                 if (ec && !first_error) first_error = ec;
                                 ++acknowledged;
                             });
        }
        receive(to);
    }

    void receive(const std::shared_ptr<net::session>& to) {
        to->async_receive([this, to](std::error_code ec, net::received_packet p) {
            if (ec) return;
            received.push_back({p.type, p.id, std::move(p.body), {}});
            receive(to);
        });
    }

    bool done() const { return acknowledged == sent.size() && check_deliveries(sent, received).complete; }
};

// Every packet of both streams arrived, in order and byte-exact, each at most `max_duplicates`
// times more than once (0 on an undisturbed link; 1 across a reset, for the packet in flight),
// and every send completed without error.
inline void expect_delivered(const traffic& down, const traffic& up, std::size_t max_duplicates) {
    for (const auto* t : {&down, &up}) {
        const auto check = check_deliveries(t->sent, t->received);
        EXPECT_TRUE(check.complete) << check.problem;
        EXPECT_TRUE(check.in_order_and_exact) << check.problem;
        EXPECT_LE(check.duplicates, max_duplicates) << "only the packet in flight may repeat, and only across a reset";
        EXPECT_EQ(t->acknowledged, t->sent.size());
        EXPECT_FALSE(t->first_error) << t->first_error.message();
    }
}

}  // namespace kdcom::test
