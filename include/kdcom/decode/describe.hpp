// One human-readable line per decoder event. kdcom-dump prints these, and the golden vectors under
// tests/vectors/ hold them as the expected event log, so the format is stable: change it only
// together with those files.
//
//        0  data     KD_STATE_CHANGE64(7) id=0x80800800 len=240 checksum=ok
//      257  control  KD_ACKNOWLEDGE(4) id=0x80800800
//      273  breakin
//      274  garbage  len=12
//      286  error    bad checksum; data leader KD_STATE_MANIPULATE(2) id=0x80800000 len=56 checksum=bad
#pragma once

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <variant>

#include "kdcom/decode/event.hpp"
#include "kdcom/error.hpp"
#include "kdcom/wire/packet_type.hpp"

namespace kdcom::decode {

namespace detail {
inline std::string format_line(const char* fmt, auto... args) {
    char line[256];
    const int n = std::snprintf(line, sizeof line, fmt, args...);
    return std::string(line, n < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1));
}

inline std::string describe_header(const wire::packet_header& h) {
    return format_line("%s(%u) id=0x%08" PRIx32, wire::packet_type_name(h.type).data(),
                       static_cast<unsigned>(h.type), h.id);
}
}  // namespace detail

inline std::string describe(const event& e) {
    using detail::format_line;
    struct visitor {
        std::string operator()(const data_packet& p) const {
            return format_line("%8" PRIu64 "  data     %s len=%u checksum=ok", p.offset,
                               detail::describe_header(p.header).c_str(), p.header.byte_count);
        }
        std::string operator()(const control_packet& p) const {
            return format_line("%8" PRIu64 "  control  %s", p.offset,
                               detail::describe_header(p.header).c_str());
        }
        std::string operator()(const breakin& b) const {
            return format_line("%8" PRIu64 "  breakin", b.offset);
        }
        std::string operator()(const garbage& g) const {
            return format_line("%8" PRIu64 "  garbage  len=%" PRIu64, g.offset, g.length);
        }
        std::string operator()(const framing_error& f) const {
            std::string s = format_line("%8" PRIu64 "  error    %s; %s leader", f.offset,
                                        f.error.message().c_str(),
                                        f.leader_byte == 0x69 ? "control" : "data");
            if (f.has_header) {
                s += ' ' + detail::describe_header(f.header);
                s += format_line(" len=%u", f.header.byte_count);
            }
            if (f.has_body)
                s += f.body_checksum == f.header.checksum ? " checksum=ok" : " checksum=bad";
            if (f.error == errc::truncated_packet)
                s += format_line(" (%zu bytes present)", f.frame_bytes);
            return s;
        }
    };
    return std::visit(visitor{}, e);
}

}  // namespace kdcom::decode
