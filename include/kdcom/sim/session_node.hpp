// A session in virtual time: session::core run the way net::session runs it (bytes in, every
// event drained, what the core hands out written as one write, on_time at its deadline), with an
// application that may take packets as they arrive or leave them queued, and a peer that may stop
// reading what this node writes. Tests of the session's rules run on it without sockets or clocks.
//
//     auto n = std::make_unique<sim::session_node>(endpoint_config{.role = role::target}, options);
//     n->on_packet = [](sim::session_node& self, const session::received_packet& p) { self.send(...); };
//     sim::duplex d(std::move(debugger), std::move(n), {...});
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "kdcom/session/core.hpp"
#include "kdcom/sim/node.hpp"

namespace kdcom::sim {

class session_node : public node {
public:
    using outcome = session::session_events::send_finished::outcome;

    session_node(const endpoint_config& config, const session::options& options) : core_(config, options) {}

    // The application: called for each packet it takes, in order; it may send from here (as a
    // receive handler of net::session may, with the same effect: the answer leaves with the ACK).
    std::function<void(session_node&, const session::received_packet&)> on_packet;
    // Whether the application takes packets as they arrive; if not, they wait in the core until
    // take_one() (the receive queue's bound then stops this node reading).
    bool takes_packets = true;
    // Whether the peer takes what this node writes; if not, writes stay queued in the core.
    bool peer_reads = true;

    void start(timestamp now) override {
        now_ = now;
        core_.stream_opened(now);
        settle();
    }

    void receive(std::span<const std::uint8_t> bytes, timestamp now) override {
        now_ = now;
        unread_.insert(unread_.end(), bytes.begin(), bytes.end());
        read_what_fits();
    }

    void on_time(timestamp now) override {
        now_ = now;
        core_.on_time(now);
        while (!later_.empty() && later_.front().when <= now) {
            const auto s = std::move(later_.front());
            later_.erase(later_.begin());
            send(s.type, s.body);
        }
        settle();
    }

    std::optional<timestamp> deadline() const override {
        return earliest({core_.deadline(), later_.empty() ? std::nullopt : std::optional(later_.front().when)});
    }

    timestamp now() const { return now_; }

    // The application's calls.
    std::error_code send(wire::packet_type type, std::span<const std::uint8_t> body) {
        const auto ec = core_.send(type, body, {}, now_);
        if (!ec) ++sends_accepted_;
        settle();
        return ec;
    }
    // A send the application makes at `when` (an answer that takes time to compute). In order of
    // `when`; the same time keeps the order of the calls.
    void send_at(timestamp when, wire::packet_type type, std::span<const std::uint8_t> body) {
        auto at = std::upper_bound(later_.begin(), later_.end(), when,
                                   [](timestamp t, const later_send& l) { return t < l.when; });
        later_.insert(at, {when, type, {body.begin(), body.end()}});
    }
    bool take_one() {
        if (!core_.has_received()) return false;
        deliver(core_.take_received());
        read_what_fits();
        return true;
    }
    // The stream ended and a new one opened at once (a reconnection, as the runner makes it).
    void reopen_stream() {
        core_.stream_closed();
        unread_.clear();
        frame_sizes_.clear();
        core_.stream_opened(now_);
        settle();
    }
    // The peer reads again: what waited is written.
    void resume_peer_reads() {
        peer_reads = true;
        settle();
    }

    const session::core& core() const { return core_; }
    const std::vector<session::received_packet>& taken() const { return taken_; }
    const std::vector<outcome>& finished() const { return finished_; }
    std::uint64_t sends_accepted() const { return sends_accepted_; }
    std::uint64_t writes() const { return writes_; }
    // Bytes this node has not read yet because the core did not want them.
    std::size_t unread() const { return unread_.size(); }

private:
    // Feeds waiting bytes while the core wants them: a whole chunk per read, as a socket read
    // would give it.
    void read_what_fits() {
        while (!unread_.empty() && core_.wants_read()) {
            const std::vector<std::uint8_t> chunk = std::move(unread_);
            unread_.clear();
            core_.bytes_read(chunk, now_);
            settle();
        }
    }

    // Drains the core, lets the application take what arrived, then writes once. A call from the
    // application inside this (an answer sent from on_packet) only drains: this one writes, so the
    // answer leaves with the acknowledgement, as net::session's pump() does it.
    void settle() {
        drain();
        if (settling_) return;
        settling_ = true;
        while (takes_packets && core_.has_received()) {
            deliver(core_.take_received());
            drain();
        }
        settling_ = false;
        if (!peer_reads) return;
        auto out = core_.start_write();
        if (out.empty()) return;
        // One write, as the runner makes it; the line gets it frame by frame, so that its per-write
        // faults (a whole write duplicated, say) stay what a line does to a frame. A line that
        // repeated a write of two frames would defeat KDCOM's one-bit packet ids, for any
        // implementation.
        for (; !out.empty(); frame_sizes_.pop_front()) {
            write(out.first(frame_sizes_.front()));
            out = out.subspan(frame_sizes_.front());
        }
        ++writes_;
        core_.finish_write();
    }

    void drain() {
        while (auto e = core_.next_event()) {
            if (auto* f = std::get_if<session::session_events::send_finished>(&*e)) finished_.push_back(f->result);
            if (auto* q = std::get_if<session::session_events::queued_for_peer>(&*e)) frame_sizes_.push_back(q->bytes.size());
        }
    }

    void deliver(session::received_packet p) {
        taken_.push_back(std::move(p));
        if (on_packet) on_packet(*this, taken_.back());
    }

    struct later_send {
        timestamp when{};
        wire::packet_type type{};
        std::vector<std::uint8_t> body;
    };

    session::core core_;
    timestamp now_{};
    std::vector<later_send> later_;
    std::deque<std::size_t> frame_sizes_;  // of the frames queued in the core, oldest first
    std::vector<std::uint8_t> unread_;
    std::vector<session::received_packet> taken_;
    std::vector<outcome> finished_;
    std::uint64_t sends_accepted_ = 0;
    std::uint64_t writes_ = 0;
    bool settling_ = false;
};

}  // namespace kdcom::sim
