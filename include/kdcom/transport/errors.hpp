// Why an address could not be used: std::error_codes in the "kdcom.transport" category. What the
// operating system refused (a port in use, a path not allowed) keeps its own code inside the
// detail of a `failure`; the code here says which step failed.
#pragma once

#include <string>
#include <system_error>

namespace kdcom::transport {

enum class transport_errc {
    invalid_address = 1,   // the text is not an address (the detail says which part is wrong)
    not_on_this_platform,  // a transport this operating system or build does not have
    cannot_listen,         // a listening address whose socket could not be created or bound
};

inline const std::error_category& transport_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "kdcom.transport"; }
        std::string message(int value) const override {
            switch (static_cast<transport_errc>(value)) {
            case transport_errc::invalid_address: return "not a valid address";
            case transport_errc::not_on_this_platform: return "transport not available on this platform";
            case transport_errc::cannot_listen: return "cannot listen on the address";
            }
            return "unknown transport error";
        }
    };
    static const category instance;
    return instance;
}

inline std::error_code make_error_code(transport_errc e) noexcept { return {static_cast<int>(e), transport_category()}; }

}  // namespace kdcom::transport

template <>
struct std::is_error_code_enum<kdcom::transport::transport_errc> : std::true_type {};
