// The parts of pcapng (draft-ietf-opsawg-pcapng) that kdcom captures use: block types, option
// codes, and the link type. Shared by the writer and the reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kdcom::capture::pcapng {

inline constexpr std::uint32_t section_header_block = 0x0A0D0D0A;
inline constexpr std::uint32_t interface_description_block = 0x00000001;
inline constexpr std::uint32_t enhanced_packet_block = 0x00000006;
inline constexpr std::uint32_t byte_order_magic = 0x1A2B3C4D;

// LINKTYPE_USER0: the first of the link types tcpdump.org reserves for private use. Wireshark
// hands its frames to whatever dissector claims wtap_encap USER0 (ours: tools/wireshark/kdcom.lua).
inline constexpr std::uint16_t link_type = 147;

// Option codes.
inline constexpr std::uint16_t opt_end = 0;
inline constexpr std::uint16_t opt_comment = 1;
inline constexpr std::uint16_t shb_userappl = 4;
inline constexpr std::uint16_t if_name = 2;
inline constexpr std::uint16_t if_description = 3;
inline constexpr std::uint16_t if_tsresol = 9;
inline constexpr std::uint16_t if_tsoffset = 14;
inline constexpr std::uint16_t epb_flags = 2;

// epb_flags bits 0-1: the direction. The interface is the debugger's end of the link, so inbound
// is target to debugger and outbound is debugger to target.
inline constexpr std::uint32_t flags_inbound = 1;
inline constexpr std::uint32_t flags_outbound = 2;

// The section comment names the two ends: "debugger: <text>" and "target: <text>", one per line.
inline constexpr std::string_view debugger_prefix = "debugger: ";
inline constexpr std::string_view target_prefix = "target: ";

inline constexpr std::size_t block_overhead = 12;  // type, total length, trailing total length

constexpr std::size_t padded(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

}  // namespace kdcom::capture::pcapng
