// One direction of a simulated byte stream with faults, in virtual time. Bytes come out in the
// order they went in (a stream, not datagrams), minus what the faults take away or add.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "kdcom/endpoint/config.hpp"
#include "kdcom/sim/random.hpp"

namespace kdcom::sim {

// Fault settings. "Per write" faults apply to one write() call, which is one packet, ACK or
// break-in byte for an endpoint; "per byte" ones to each byte.
struct faults {
    double packet_loss = 0;  // per write: the whole write vanishes
    double byte_loss = 0;    // per byte: the byte vanishes
    double corruption = 0;   // per byte: the byte is replaced by a random one
    double bit_flip = 0;     // per byte: one bit of it flips
    double damage = 0;       // per write: one of its bytes is replaced by another value
    double duplication = 0;  // per write: it arrives twice in a row
    double truncation = 0;   // per write: only a random prefix arrives
    double garbage = 0;      // per write: a burst of line noise arrives before it
    std::size_t garbage_max = 32;
    // Deliveries are cut into chunks of 1..max_chunk bytes, each arriving as a separate read
    // (0: a write arrives as one read).
    std::size_t max_chunk = 0;
    timestamp delay{};   // one-way latency
    timestamp jitter{};  // extra latency per write, uniform in [0, jitter]; order is kept

    // Nothing at all: a perfect wire.
    bool none() const {
        return packet_loss == 0 && byte_loss == 0 && corruption == 0 && bit_flip == 0 && damage == 0 &&
               duplication == 0 && truncation == 0 && garbage == 0 && max_chunk == 0;
    }
};

class link {
public:
    link(const faults& f, std::uint64_t seed) : faults_(f), random_(seed) {}

    // Sends `bytes` at time `now`: the faults are applied and what survives is scheduled.
    void write(std::span<const std::uint8_t> bytes, timestamp now) {
        if (random_.chance(faults_.packet_loss)) return;
        std::vector<std::uint8_t> out;
        if (random_.chance(faults_.garbage))
            out = random_.garbage(1 + random_.below(faults_.garbage_max));
        std::size_t length = bytes.size();
        if (length > 1 && random_.chance(faults_.truncation)) length = random_.below(length);
        const std::size_t damaged = random_.chance(faults_.damage) ? random_.below(length) : length;
        const int copies = random_.chance(faults_.duplication) ? 2 : 1;
        for (int copy = 0; copy < copies; ++copy) {
            for (std::size_t i = 0; i < length; ++i) {
                if (random_.chance(faults_.byte_loss)) continue;
                std::uint8_t b = bytes[i];
                if (i == damaged) b = static_cast<std::uint8_t>(b + 1 + random_.below(255));
                if (random_.chance(faults_.corruption)) b = random_.byte();
                if (random_.chance(faults_.bit_flip)) b ^= static_cast<std::uint8_t>(1u << random_.below(8));
                out.push_back(b);
            }
        }
        if (out.empty()) return;
        timestamp at = now + faults_.delay;
        if (faults_.jitter > timestamp{})
            at += timestamp(static_cast<timestamp::rep>(random_.below(static_cast<std::uint64_t>(faults_.jitter.count()) + 1)));
        at = std::max(at, last_arrival_);  // a stream keeps its order
        last_arrival_ = at;
        std::size_t offset = 0;
        while (offset < out.size()) {
            std::size_t n = out.size() - offset;
            if (faults_.max_chunk > 0) n = std::min(n, 1 + random_.below(faults_.max_chunk));
            in_flight_bytes_ += n;
            queue_.push_back({at, std::vector<std::uint8_t>(out.begin() + static_cast<long>(offset),
                                                           out.begin() + static_cast<long>(offset + n))});
            offset += n;
        }
    }

    // When the next chunk arrives, if one is in flight.
    std::optional<timestamp> next_arrival() const {
        if (queue_.empty()) return std::nullopt;
        return queue_.front().at;
    }

    // Takes the next chunk if it has arrived by `now`.
    std::optional<std::vector<std::uint8_t>> take(timestamp now) {
        if (queue_.empty() || queue_.front().at > now) return std::nullopt;
        auto bytes = std::move(queue_.front().bytes);
        queue_.pop_front();
        in_flight_bytes_ -= bytes.size();
        return bytes;
    }

    // Drops everything in flight (the reader went away).
    void clear() {
        queue_.clear();
        in_flight_bytes_ = 0;
    }

    std::size_t in_flight_bytes() const { return in_flight_bytes_; }
    const faults& settings() const { return faults_; }
    // New faults for what is written from now on (what is in flight keeps its fate).
    void set_faults(const faults& f) { faults_ = f; }

private:
    struct chunk {
        timestamp at;
        std::vector<std::uint8_t> bytes;
    };

    faults faults_;
    random random_;
    std::deque<chunk> queue_;
    timestamp last_arrival_{};
    std::size_t in_flight_bytes_ = 0;
};

}  // namespace kdcom::sim
