// The bare debugger's dump loop the benchmarks measure against and through: on a debugger session,
// a physical-memory read of the most a packet carries, the next packet taken as its reply, the
// next read, and so on. No reply matching, no reply timeout: the floor a KD client is held to.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <future>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <benchmark/benchmark.h>

#include "kdcom/kd/manipulate.hpp"
#include "kdcom/net/session.hpp"

namespace kdcom::bench {

inline constexpr std::uint32_t dump_read_size = wire::default_max_body - kd::manipulate_header_size;  // 3944

// Reads `size` bytes from `address`, one read after another on the io_context's thread; returns
// the bytes the replies carried. Call from another thread; the session's target must be stopped.
inline std::uint64_t dump_with_session_loop(asio::io_context& io, net::session& debugger, std::uint64_t address,
                                            std::uint64_t size) {
    std::promise<std::uint64_t> done;
    std::uint64_t got = 0;
    std::function<void(std::uint64_t)> next = [&](std::uint64_t at) {
        if (at >= address + size) return done.set_value(got);
        kd::manipulate_header h;
        h.api = kd::manipulate_api::read_physical_memory;
        h.memory = {at, static_cast<std::uint32_t>(std::min<std::uint64_t>(dump_read_size, address + size - at)), 0};
        std::uint8_t header[kd::manipulate_header_size];
        kd::encode_manipulate(h, header);
        debugger.async_send(wire::packet_type::state_manipulate, header, {}, [](std::error_code) {});
        debugger.async_receive([&, at](std::error_code ec, net::received_packet p) {
            if (ec) return done.set_value(got);
            got += p.body.size() - kd::manipulate_header_size;
            benchmark::DoNotOptimize(p.body.data());
            next(at + dump_read_size);
        });
    };
    asio::post(io, [&] { next(address); });
    return done.get_future().get();
}

}  // namespace kdcom::bench
