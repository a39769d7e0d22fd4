// KDCOM wire constants. Values are public knowledge (ReactOS windbgkd.h and every re-implementation);
// see docs/protocol.md for what each one means on the wire.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kdcom::wire {

// Leaders: four identical bytes open every packet.
inline constexpr std::uint8_t data_leader_byte = 0x30;     // '0'
inline constexpr std::uint8_t control_leader_byte = 0x69;  // 'i'
inline constexpr std::uint32_t data_packet_leader = 0x30303030;
inline constexpr std::uint32_t control_packet_leader = 0x69696969;
inline constexpr std::size_t leader_size = 4;

// The break-in request is this single byte sent by the debugger (BREAKIN_PACKET 0x62626262 is
// defined by windbgkd.h but never sent whole).
inline constexpr std::uint8_t breakin_byte = 0x62;  // 'b'

// Every data packet's body is followed by this byte; control packets have no trailer.
inline constexpr std::uint8_t trailer_byte = 0xAA;

inline constexpr std::size_t header_size = 16;
inline constexpr std::size_t trailer_size = 1;

// PACKET_MAX_SIZE: the largest body Windows sends. Peers that need more can raise the decoder's
// limit, up to what ByteCount (16 bits) can express.
inline constexpr std::size_t default_max_body = 4000;
inline constexpr std::size_t byte_count_limit = 0xFFFF;

// Packet ids: a stop-and-wait alternating-bit protocol. Bit 0 alternates; the SYNC bit is set by a
// target that has just booted until its first packet is acknowledged.
inline constexpr std::uint32_t initial_packet_id = 0x80800000;
inline constexpr std::uint32_t sync_packet_id = 0x00000800;

// Size of a whole data packet on the wire for a body of `body_size` bytes.
constexpr std::size_t data_packet_size(std::size_t body_size) noexcept {
    return header_size + body_size + trailer_size;
}
inline constexpr std::size_t control_packet_size = header_size;

}  // namespace kdcom::wire
