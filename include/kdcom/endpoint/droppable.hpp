// Which sends may give up when the debugger does not answer. Everything else is retried until it
// is acknowledged, because the kernel is stopped and the debugger must eventually answer.
#pragma once

#include <cstdint>
#include <span>

#include <boost/endian/conversion.hpp>

#include "kdcom/wire/packet_type.hpp"

namespace kdcom {

// The message's first field: ApiNumber or NewState (DBGKD_* messages all start with it).
inline constexpr std::uint32_t print_string_api = 0x3230;        // DbgKdPrintStringApi
inline constexpr std::uint32_t load_symbols_state_change = 0x3031;  // DbgKdLoadSymbolsStateChange
inline constexpr std::uint32_t create_file_api = 0x3430;        // DbgKdCreateFileApi

// True for DbgPrint output, load-symbols notifications, create-file requests and (if
// `trace_io_droppable`) trace I/O: what a kernel may lose when no debugger listens.
inline bool is_droppable(wire::packet_type type, std::span<const std::uint8_t> body,
                         bool trace_io_droppable) noexcept {
    if (type == wire::packet_type::trace_io) return trace_io_droppable;
    if (body.size() < 4) return false;
    const std::uint32_t first = boost::endian::load_little_u32(body.data());
    switch (type) {
    case wire::packet_type::debug_io: return first == print_string_api;
    case wire::packet_type::state_change64:
    case wire::packet_type::state_change32: return first == load_symbols_state_change;
    case wire::packet_type::file_io: return first == create_file_api;
    default: return false;
    }
}

}  // namespace kdcom
