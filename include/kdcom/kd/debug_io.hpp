// DBGKD_DEBUG_IO: the 16-byte message header of a KD_DEBUG_IO packet. For DbgKdPrintStringApi
// (DbgPrint output) the message data is the string, LengthOfString bytes.
//
// Layout (little-endian; ReactOS windbgkd.h): ApiNumber u32 @0, ProcessorLevel u16 @4, Processor
// u16 @6, then PrintString.LengthOfString u32 @8 (or GetString: LengthOfPromptString u32 @8,
// LengthOfStringRead u32 @0xC).
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include <boost/endian/buffers.hpp>

#include "kdcom/kd/api.hpp"

namespace kdcom::kd {

namespace wire_layout {
struct debug_io {
    boost::endian::little_uint32_buf_t api_number;
    boost::endian::little_uint16_buf_t processor_level, processor;
    boost::endian::little_uint32_buf_t length_of_string, length_of_string_read;
};
static_assert(sizeof(debug_io) == 16, "DBGKD_DEBUG_IO");
}  // namespace wire_layout

inline constexpr std::size_t debug_io_header_size = sizeof(wire_layout::debug_io);

struct debug_io_header {
    std::uint32_t api = debug_io_api::print_string;
    std::uint16_t processor_level = 0, processor = 0;
    std::uint32_t length_of_string = 0;       // PrintString; GetString: the prompt's length
    std::uint32_t length_of_string_read = 0;  // GetString only
};

inline std::optional<debug_io_header> decode_debug_io(std::span<const std::uint8_t> body) noexcept {
    if (body.size() < debug_io_header_size) return std::nullopt;
    wire_layout::debug_io w;
    std::memcpy(&w, body.data(), sizeof w);
    return debug_io_header{w.api_number.value(), w.processor_level.value(), w.processor.value(),
                           w.length_of_string.value(), w.length_of_string_read.value()};
}

inline std::size_t encode_debug_io(const debug_io_header& h, std::span<std::uint8_t> out) noexcept {
    if (out.size() < debug_io_header_size) return 0;
    wire_layout::debug_io w;
    w.api_number = h.api;
    w.processor_level = h.processor_level;
    w.processor = h.processor;
    w.length_of_string = h.length_of_string;
    w.length_of_string_read = h.length_of_string_read;
    std::memcpy(out.data(), &w, sizeof w);
    return sizeof w;
}

}  // namespace kdcom::kd
