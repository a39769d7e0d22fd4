// Copies a reason into a caller's C buffer (private to the guest library).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

namespace kdcom::guest_detail {

// `error` holds `size` bytes (may be 0 or null); the text is cut to fit and always terminated.
inline void set_error(char* error, std::size_t size, const std::string& text) {
    if (!error || size == 0) return;
    const std::size_t n = std::min(size - 1, text.size());
    std::memcpy(error, text.data(), n);
    error[n] = '\0';
}

}  // namespace kdcom::guest_detail
