// The 16-byte KD_PACKET header, encoded and decoded field by field in explicit little-endian order
// (Boost.Endian), so the code is correct on a big-endian host and never depends on struct layout.
//
//   offset 0  u32 PacketLeader   0x30303030 data, 0x69696969 control
//   offset 4  u16 PacketType
//   offset 6  u16 ByteCount      body bytes (data); 0 (control)
//   offset 8  u32 PacketId
//   offset 12 u32 Checksum       sum of body bytes (data); 0 (control)
#pragma once

#include <cstdint>
#include <span>

#include <boost/endian/conversion.hpp>

#include "kdcom/wire/constants.hpp"
#include "kdcom/wire/packet_type.hpp"

namespace kdcom::wire {

struct packet_header {
    std::uint32_t leader = 0;
    packet_type type = packet_type::unused;
    std::uint16_t byte_count = 0;
    std::uint32_t id = 0;
    std::uint32_t checksum = 0;

    bool is_data() const noexcept { return leader == data_packet_leader; }
    bool is_control() const noexcept { return leader == control_packet_leader; }

    friend bool operator==(const packet_header&, const packet_header&) = default;
};

inline void store_header(const packet_header& h, std::span<std::uint8_t, header_size> out) noexcept {
    using namespace boost::endian;
    std::uint8_t* p = out.data();
    store_little_u32(p + 0, h.leader);
    store_little_u16(p + 4, static_cast<std::uint16_t>(h.type));
    store_little_u16(p + 6, h.byte_count);
    store_little_u32(p + 8, h.id);
    store_little_u32(p + 12, h.checksum);
}

inline packet_header load_header(std::span<const std::uint8_t, header_size> in) noexcept {
    using namespace boost::endian;
    const std::uint8_t* p = in.data();
    packet_header h;
    h.leader = load_little_u32(p + 0);
    h.type = static_cast<packet_type>(load_little_u16(p + 4));
    h.byte_count = load_little_u16(p + 6);
    h.id = load_little_u32(p + 8);
    h.checksum = load_little_u32(p + 12);
    return h;
}

}  // namespace kdcom::wire
