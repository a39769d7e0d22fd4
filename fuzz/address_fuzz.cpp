// libFuzzer target for the address parser: never crashes, an error always comes with its code and a
// message,
// and an accepted address survives a round trip through to_string().
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "kdcom/transport/address.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    kdcom::failure error;
    const auto a = kdcom::transport::parse_address(text, error);
    if (!a) {
        if (error.code != kdcom::transport::transport_errc::invalid_address || error.detail.empty()) {
            std::fprintf(stderr, "rejected without its code or a message\n");
            std::abort();
        }
        return 0;
    }
    kdcom::failure again_error;
    const auto again = kdcom::transport::parse_address(a->to_string(), again_error);
    if (!again || *again != *a) {
        std::fprintf(stderr, "round trip failed: '%s' -> '%s' (%s)\n", std::string(text).c_str(),
                     a->to_string().c_str(), again_error.detail.c_str());
        std::abort();
    }
    return 0;
}
