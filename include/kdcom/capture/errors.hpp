// Why a capture file could not be read: std::error_codes in their own category, "kdcom.capture",
// apart from the protocol's ("kdcom") and the transports' ("kdcom.transport"), so that a caller
// can tell a bad file from a bad packet or a bad address by the code alone.
#pragma once

#include <string>
#include <system_error>

namespace kdcom::capture {

enum class capture_errc {
    not_pcapng = 1,  // the input does not start with a pcapng section header
    corrupt,         // a block whose lengths, options or references do not add up
    foreign_link,    // packets of a link type that is not a kdcom byte stream
    torn,            // the input ends inside a block (the writer died mid-record)
};

inline const std::error_category& capture_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "kdcom.capture"; }
        std::string message(int value) const override {
            switch (static_cast<capture_errc>(value)) {
            case capture_errc::not_pcapng: return "not a pcapng capture";
            case capture_errc::corrupt: return "corrupt pcapng block";
            case capture_errc::foreign_link: return "capture of another link type, not a KDCOM byte stream";
            case capture_errc::torn: return "capture torn: it ends inside a block";
            }
            return "unknown capture error";
        }
    };
    static const category instance;
    return instance;
}

inline std::error_code make_error_code(capture_errc e) noexcept { return {static_cast<int>(e), capture_category()}; }

}  // namespace kdcom::capture

template <>
struct std::is_error_code_enum<kdcom::capture::capture_errc> : std::true_type {};
