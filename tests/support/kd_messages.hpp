// KD message headers for tests: a breakpoint state change and manipulate requests.
#pragma once

#include <cstdint>
#include <vector>

#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/state_change.hpp"

namespace kdcom::test {

inline std::vector<std::uint8_t> breakpoint_state_change() {
    kd::state_change_header h;
    h.exception.code = 0x80000003;
    h.program_counter = h.exception.address = 0xfffff80012345678u;
    std::vector<std::uint8_t> b(kd::state_change_header_size);
    kd::encode_state_change(h, b);
    return b;
}

inline std::vector<std::uint8_t> manipulate(std::uint32_t api, std::uint64_t address = 0, std::uint32_t count = 0) {
    kd::manipulate_header h;
    h.api = api;
    h.memory = {address, count, 0};
    std::vector<std::uint8_t> b(kd::manipulate_header_size);
    kd::encode_manipulate(h, b);
    return b;
}

}  // namespace kdcom::test
