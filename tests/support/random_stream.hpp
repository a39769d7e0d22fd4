// Seeded random KDCOM streams: valid packets of random types and sizes with garbage between them,
// and the packets a decoder must find in them.
#pragma once

#include <random>

#include "kdcom/sim/random.hpp"
#include "support/decode_helpers.hpp"

namespace kdcom::test {

struct random_stream {
    bytes stream;
    std::vector<delivered_packet> packets;  // what was embedded, at its offset
};

struct random_stream_shape {
    std::size_t packets = 20;
    std::size_t max_body = wire::default_max_body;
    std::size_t max_garbage = 64;      // bytes of garbage before each packet, at most
    double garbage_probability = 0.5;  // chance of garbage before a packet
};

// Garbage biased toward the bytes that matter to the scanner (the simulator's line noise).
inline bytes random_garbage(std::mt19937_64& rng, std::size_t length) {
    return sim::random(rng()).garbage(length);
}

inline random_stream make_random_stream(std::mt19937_64& rng, const random_stream_shape& shape) {
    static constexpr wire::packet_type data_types[] = {
        wire::packet_type::state_change32, wire::packet_type::state_manipulate,
        wire::packet_type::debug_io,       wire::packet_type::state_change64,
        wire::packet_type::trace_io,       wire::packet_type::control_request,
        wire::packet_type::file_io};
    static constexpr wire::packet_type control_types[] = {
        wire::packet_type::acknowledge, wire::packet_type::resend, wire::packet_type::reset};
    random_stream r;
    for (std::size_t i = 0; i < shape.packets; ++i) {
        if (std::bernoulli_distribution(shape.garbage_probability)(rng))
            append(r.stream, random_garbage(rng, rng() % (shape.max_garbage + 1)));
        const auto id = static_cast<std::uint32_t>(rng());
        delivered_packet p;
        p.offset = r.stream.size();
        if (rng() % 3 == 0) {
            const auto type = control_types[rng() % std::size(control_types)];
            append(r.stream, control_frame(type, id));
            p.header = {wire::control_packet_leader, type, 0, id, 0};
        } else {
            const auto type = data_types[rng() % std::size(data_types)];
            // Mostly small bodies, sometimes up to the limit.
            const std::size_t size = rng() % 4 == 0 ? rng() % (shape.max_body + 1) : rng() % 64;
            p.body.resize(size);
            for (auto& b : p.body) b = static_cast<std::uint8_t>(rng());
            const bytes frame = data_frame(type, id, p.body);
            p.header = wire::load_header(std::span(frame).first<wire::header_size>());
            append(r.stream, frame);
        }
        r.packets.push_back(std::move(p));
    }
    return r;
}

// Chunk sizes from 1 to `max_chunk`, drawn from `rng`.
inline std::function<std::size_t(std::size_t)> random_chunks(std::mt19937_64& rng, std::size_t max_chunk) {
    return [&rng, max_chunk](std::size_t) { return 1 + rng() % max_chunk; };
}

}  // namespace kdcom::test
