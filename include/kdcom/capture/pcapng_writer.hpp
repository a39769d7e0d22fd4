// Encodes kdcom captures as pcapng, block by block, into a caller's buffer. No I/O: a file writer
// (kdcom/capture/capture_file.hpp) or anything else puts the bytes where they belong.
//
// A capture is one section header (naming the two ends), one interface (the debugger's end of the
// link, nanosecond timestamps, LINKTYPE_USER0), then one enhanced packet block per record with the
// direction in epb_flags. Blocks are little-endian; readers accept either byte order.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/endian/conversion.hpp>

#include "kdcom/capture/pcapng_blocks.hpp"
#include "kdcom/capture/record.hpp"

namespace kdcom::capture::pcapng {

namespace detail {

inline void put_u16(std::vector<std::uint8_t>& out, std::uint16_t v) {
    const std::size_t at = out.size();
    out.resize(at + 2);
    boost::endian::store_little_u16(out.data() + at, v);
}

inline void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
    const std::size_t at = out.size();
    out.resize(at + 4);
    boost::endian::store_little_u32(out.data() + at, v);
}

inline void put_padding(std::vector<std::uint8_t>& out, std::size_t n) {
    out.insert(out.end(), padded(n) - n, std::uint8_t{0});
}

inline void put_option(std::vector<std::uint8_t>& out, std::uint16_t code, std::span<const std::uint8_t> value) {
    put_u16(out, code);
    put_u16(out, static_cast<std::uint16_t>(value.size()));
    out.insert(out.end(), value.begin(), value.end());
    put_padding(out, value.size());
}

inline void put_option(std::vector<std::uint8_t>& out, std::uint16_t code, std::string_view text) {
    // Option values are at most 65535 bytes; longer text is cut (it is only a description).
    text = text.substr(0, 0xFFFF);
    put_option(out, code, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

// Starts a block; finish_block() fills in both total lengths.
inline std::size_t start_block(std::vector<std::uint8_t>& out, std::uint32_t type) {
    const std::size_t start = out.size();
    put_u32(out, type);
    put_u32(out, 0);
    return start;
}

inline void finish_block(std::vector<std::uint8_t>& out, std::size_t start) {
    const auto total = static_cast<std::uint32_t>(out.size() - start + 4);
    put_u32(out, total);
    boost::endian::store_little_u32(out.data() + start + 4, total);
}

}  // namespace detail

// Appends the section header and the interface description: the start of every capture file.
inline void append_file_header(std::vector<std::uint8_t>& out, const capture_info& info) {
    using namespace detail;
    std::size_t b = start_block(out, section_header_block);
    put_u32(out, byte_order_magic);
    put_u16(out, 1);  // major version
    put_u16(out, 0);  // minor version
    put_u32(out, 0xFFFFFFFF);  // section length unknown (64 bits of all ones)
    put_u32(out, 0xFFFFFFFF);
    if (!info.debugger.empty() || !info.target.empty())
        put_option(out, opt_comment,
                   std::string(debugger_prefix) + info.debugger + "\n" + std::string(target_prefix) + info.target);
    if (!info.application.empty()) put_option(out, shb_userappl, info.application);
    put_u32(out, opt_end);
    finish_block(out, b);

    b = start_block(out, interface_description_block);
    put_u16(out, link_type);
    put_u16(out, 0);  // reserved
    put_u32(out, 0);  // snap length: no limit
    put_option(out, if_name, "kdcom");
    put_option(out, if_description, "KDCOM byte stream seen from the debugger: inbound = target to debugger");
    const std::uint8_t nanoseconds[1] = {9};
    put_option(out, if_tsresol, nanoseconds);
    put_u32(out, opt_end);
    finish_block(out, b);
}

// Appends one record. `bytes` may be empty (a block of zero length is legal and harmless).
inline void append_record(std::vector<std::uint8_t>& out, std::uint64_t time_ns, flow direction,
                          std::span<const std::uint8_t> bytes) {
    using namespace detail;
    out.reserve(out.size() + 48 + padded(bytes.size()));
    const std::size_t b = start_block(out, enhanced_packet_block);
    put_u32(out, 0);  // interface 0
    put_u32(out, static_cast<std::uint32_t>(time_ns >> 32));
    put_u32(out, static_cast<std::uint32_t>(time_ns));
    put_u32(out, static_cast<std::uint32_t>(bytes.size()));  // captured length
    put_u32(out, static_cast<std::uint32_t>(bytes.size()));  // original length
    out.insert(out.end(), bytes.begin(), bytes.end());
    put_padding(out, bytes.size());
    std::uint8_t flags[4];
    boost::endian::store_little_u32(
        flags, direction == flow::target_to_debugger ? flags_inbound : flags_outbound);
    put_option(out, epb_flags, flags);
    put_u32(out, opt_end);
    finish_block(out, b);
}

// The largest record append_record() should be given: capture writers split longer writes (the
// bytes are a stream, so splitting loses nothing) and readers refuse blocks much larger.
inline constexpr std::size_t max_record_bytes = 1 << 20;

}  // namespace kdcom::capture::pcapng
