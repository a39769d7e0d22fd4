// How a debugger's KD operation fails, as std::error_code: the client's own conditions in the
// "kdcom.kd" category, and a target's refusal as its NTSTATUS in the "ntstatus" category (the
// code's value is the status), so a caller tells "the target said no" from "nobody answered"
// without parsing text.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <system_error>
#include <type_traits>

#include "kdcom/kd/status.hpp"

namespace kdcom::kd {

enum class client_errc {
    target_running = 1,  // the request needs a stopped target: break in first (nothing was sent)
    no_reply,            // the target acknowledged nothing or answered nothing, after every resynchronisation
    bad_reply,           // a reply too short for what it claims
    short_transfer,      // the target moved fewer bytes than asked (the ones it did move are kept)
};

inline const std::error_category& client_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "kdcom.kd"; }
        std::string message(int v) const override {
            switch (static_cast<client_errc>(v)) {
            case client_errc::target_running: return "the target is running (break in first)";
            case client_errc::no_reply: return "the target did not answer, even after resynchronising";
            case client_errc::bad_reply: return "the target's reply is malformed";
            case client_errc::short_transfer: return "the target moved fewer bytes than asked";
            }
            return "unknown KD client error";
        }
    };
    static const category instance;
    return instance;
}
inline std::error_code make_error_code(client_errc e) noexcept { return {static_cast<int>(e), client_category()}; }

// A target's NTSTATUS as an error code: message "STATUS_UNSUCCESSFUL (0xc0000001)".
inline const std::error_category& ntstatus_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "ntstatus"; }
        std::string message(int v) const override {
            const auto s = static_cast<std::uint32_t>(v);
            char hex[16];
            std::snprintf(hex, sizeof hex, "0x%08x", s);
            const auto name = status_name(s);
            return name.empty() ? std::string("NTSTATUS ") + hex : std::string(name) + " (" + hex + ")";
        }
    };
    static const category instance;
    return instance;
}
inline std::error_code ntstatus_error(std::uint32_t s) noexcept {
    return {static_cast<int>(s), ntstatus_category()};
}

}  // namespace kdcom::kd

template <>
struct std::is_error_code_enum<kdcom::kd::client_errc> : std::true_type {};
