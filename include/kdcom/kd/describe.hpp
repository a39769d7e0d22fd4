// The name of the KD message a data packet carries: every KD message header starts with its 32-bit
// number (NewState or ApiNumber), read here and named by api_name().
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include <boost/endian/conversion.hpp>

#include "kdcom/kd/api.hpp"

namespace kdcom::kd {

// "DbgKdGetVersionApi" for a KD_STATE_MANIPULATE body that starts with 0x3146, and so on; an empty
// view if the body is too short or the number is not one its packet type has.
inline std::string_view message_name(wire::packet_type type, std::span<const std::uint8_t> body) noexcept {
    if (body.size() < 4) return {};
    return api_name(type, boost::endian::load_little_u32(body.data()));
}

}  // namespace kdcom::kd
