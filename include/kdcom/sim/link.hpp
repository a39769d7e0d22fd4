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
#include "kdcom/sim/faults.hpp"
#include "kdcom/sim/random.hpp"

namespace kdcom::sim {

class link {
public:
    link(const faults& f, std::uint64_t seed) : faults_(f), random_(seed) {}

    // Sends `bytes` at time `now`: the faults are applied and what survives is scheduled.
    void write(std::span<const std::uint8_t> bytes, timestamp now) {
        std::vector<std::uint8_t> out;
        if (!apply_faults(faults_, random_, bytes, out)) return;
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
