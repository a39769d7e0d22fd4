// KD PDUs: the guest's KdSendPacket/KdReceivePacket calls and the host's answers, one shared-memory
// message each (layout.h describes the format). Encoding writes into the caller's buffer; decoding
// checks that the lengths add up exactly and returns views into the message it was given (which
// the caller has already copied out of the region, so nothing is fetched twice).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <system_error>

#include <boost/endian/conversion.hpp>

#include "kdcom/error.hpp"
#include "kdcom/shm/layout.h"

namespace kdcom::shm {

struct kd_pdu {
    std::uint16_t operation = 0;  // KDCOM_SHM_PDU_*
    std::uint16_t packet_type = 0;
    std::uint32_t sequence = 0;
    std::uint32_t status = 0;
    std::span<const std::uint8_t> header;  // SEND, RECEIVED: the bytes (views into the message)
    std::span<const std::uint8_t> data;
    // RECEIVE: the sizes of the guest's buffers (header and data stay empty).
    std::uint16_t header_capacity = 0;
    std::uint16_t data_capacity = 0;
};

inline constexpr std::size_t kd_pdu_fixed_size = sizeof(kdcom_shm_kd_pdu);
static_assert(kd_pdu_fixed_size == 16, "the PDU header is part of the guest ABI");

// The message size of `p` once encoded.
inline std::size_t kd_pdu_size(const kd_pdu& p) noexcept { return kd_pdu_fixed_size + p.header.size() + p.data.size(); }

// Writes `p` into `out`; returns the bytes written, or 0 and sets `ec` (buffer_too_small,
// body_too_large when a part exceeds 65535 bytes).
inline std::size_t encode_kd_pdu(const kd_pdu& p, std::span<std::uint8_t> out, std::error_code& ec) noexcept {
    if (p.header.size() > 0xFFFF || p.data.size() > 0xFFFF) {
        ec = errc::body_too_large;
        return 0;
    }
    const std::size_t size = kd_pdu_size(p);
    if (out.size() < size) {
        ec = errc::buffer_too_small;
        return 0;
    }
    const bool receive = p.operation == KDCOM_SHM_PDU_RECEIVE;
    std::uint8_t* o = out.data();
    boost::endian::store_little_u16(o + 0, p.operation);
    boost::endian::store_little_u16(o + 2, p.packet_type);
    boost::endian::store_little_u32(o + 4, p.sequence);
    boost::endian::store_little_u32(o + 8, p.status);
    boost::endian::store_little_u16(o + 12, receive ? p.header_capacity : static_cast<std::uint16_t>(p.header.size()));
    boost::endian::store_little_u16(o + 14, receive ? p.data_capacity : static_cast<std::uint16_t>(p.data.size()));
    if (!p.header.empty()) std::memcpy(o + kd_pdu_fixed_size, p.header.data(), p.header.size());
    if (!p.data.empty()) std::memcpy(o + kd_pdu_fixed_size + p.header.size(), p.data.data(), p.data.size());
    ec.clear();
    return size;
}

// Reads a PDU from `message`; `out` views into it. errc::shm_malformed_pdu unless the operation is
// known and the lengths account for every byte (a RECEIVE carries no bytes after the fixed part).
inline std::error_code decode_kd_pdu(std::span<const std::uint8_t> message, kd_pdu& out) noexcept {
    if (message.size() < kd_pdu_fixed_size) return errc::shm_malformed_pdu;
    const std::uint8_t* m = message.data();
    kd_pdu p;
    p.operation = boost::endian::load_little_u16(m + 0);
    p.packet_type = boost::endian::load_little_u16(m + 2);
    p.sequence = boost::endian::load_little_u32(m + 4);
    p.status = boost::endian::load_little_u32(m + 8);
    const std::uint16_t header_length = boost::endian::load_little_u16(m + 12);
    const std::uint16_t data_length = boost::endian::load_little_u16(m + 14);
    if (p.operation < KDCOM_SHM_PDU_SEND || p.operation > KDCOM_SHM_PDU_RECEIVED) return errc::shm_malformed_pdu;
    const std::size_t rest = message.size() - kd_pdu_fixed_size;
    if (p.operation == KDCOM_SHM_PDU_RECEIVE) {
        if (rest != 0) return errc::shm_malformed_pdu;
        p.header_capacity = header_length;
        p.data_capacity = data_length;
    } else {
        if (rest != std::size_t{header_length} + data_length) return errc::shm_malformed_pdu;
        p.header = message.subspan(kd_pdu_fixed_size, header_length);
        p.data = message.subspan(kd_pdu_fixed_size + header_length, data_length);
    }
    out = p;
    return {};
}

}  // namespace kdcom::shm
