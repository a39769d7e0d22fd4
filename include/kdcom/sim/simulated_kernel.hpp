// What a simulated kernel says at the KD level, whoever carries it (kdcom's endpoint or a model of
// another KDCOM implementation): its memory, the state change it reports when it stops, the reply
// to each manipulate request, its prints. Its memory is a pure function of the address plus what
// was written, so any reply can be checked by the debugger that asked.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "kdcom/kd/api.hpp"
#include "kdcom/kd/debug_io.hpp"
#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/state_change.hpp"
#include "kdcom/kd/status.hpp"
#include "kdcom/wire/constants.hpp"

namespace kdcom::sim {

inline constexpr std::uint64_t kernel_pc = 0xFFFFF80000001000ull;
// The most a read reply carries in a 4000-byte body.
inline constexpr std::size_t max_read = wire::default_max_body - kd::manipulate_header_size;

// The byte the simulated machine holds at `address`.
inline std::uint8_t memory_byte(std::uint64_t address) noexcept {
    std::uint64_t z = (address + 0x632BE59BD9B4E019ull) * 0x9E3779B97F4A7C15ull;
    z ^= z >> 29;
    return static_cast<std::uint8_t>(z >> 24);
}

// The simulated machine's memory, one address space for virtual and physical reads: `pristine`
// (a pure function of the address) under what was written. Writes beyond `write_limit` bytes in
// all fail, so a debugger cannot make it grow without bound.
class simulated_memory {
public:
    static constexpr std::size_t write_limit = 1 << 20;

    explicit simulated_memory(std::function<std::uint8_t(std::uint64_t)> pristine = memory_byte)
        : pristine_(std::move(pristine)) {}

    std::uint8_t read(std::uint64_t address) const {
        if (written_.empty()) return pristine_(address);
        const auto w = written_.find(address);
        return w != written_.end() ? w->second : pristine_(address);
    }

    // Writes all of `bytes` at `address`, or nothing if that would pass the write limit.
    bool write(std::uint64_t address, std::span<const std::uint8_t> bytes) {
        if (written_.size() + bytes.size() > write_limit) return false;
        for (std::size_t i = 0; i < bytes.size(); ++i) written_[address + i] = bytes[i];
        return true;
    }

private:
    std::function<std::uint8_t(std::uint64_t)> pristine_;
    std::map<std::uint64_t, std::uint8_t> written_;
};

// The stop report: a breakpoint exception on processor 0.
inline std::vector<std::uint8_t> stop_report(std::uint64_t pc = kernel_pc) {
    kd::state_change_header h;
    h.new_state = kd::state_change::exception;
    h.program_counter = pc;
    h.exception.code = kd::status::breakpoint;
    h.exception.address = pc;
    h.instruction_count = 1;
    h.instruction_stream[0] = 0xCC;
    std::vector<std::uint8_t> body(kd::state_change_header_size);
    kd::encode_state_change(h, body);
    return body;
}

// A DbgPrint: DBGKD_DEBUG_IO with PrintString, then the text.
inline std::vector<std::uint8_t> print_message(std::string_view text) {
    std::vector<std::uint8_t> body(kd::debug_io_header_size + text.size());
    kd::encode_debug_io({.api = kd::debug_io_api::print_string, .length_of_string = static_cast<std::uint32_t>(text.size())},
                        body);
    std::copy(text.begin(), text.end(), body.begin() + kd::debug_io_header_size);
    return body;
}

// A manipulate request's header and data, as a debugger builds it.
inline std::vector<std::uint8_t> manipulate_request(const kd::manipulate_header& h, std::span<const std::uint8_t> data = {}) {
    std::vector<std::uint8_t> body(kd::manipulate_header_size + data.size());
    kd::encode_manipulate(h, body);
    std::copy(data.begin(), data.end(), body.begin() + kd::manipulate_header_size);
    return body;
}

inline std::vector<std::uint8_t> read_request(std::uint64_t address, std::uint32_t count) {
    kd::manipulate_header h;
    h.api = kd::manipulate_api::read_virtual_memory;
    h.memory = {address, count, 0};
    return manipulate_request(h);
}

inline std::vector<std::uint8_t> continue_request() {
    kd::manipulate_header h;
    h.api = kd::manipulate_api::continue2;
    h.continuation.status = kd::status::dbg_continue;
    return manipulate_request(h);
}

inline std::vector<std::uint8_t> get_version_request() {
    kd::manipulate_header h;
    h.api = kd::manipulate_api::get_version;
    return manipulate_request(h);
}

// What the kernel does with a manipulate request: the reply to send, if any, and whether it
// resumes running (Continue and Continue2 have no reply). Reads and writes go to `memory`.
struct kernel_answer {
    std::optional<std::vector<std::uint8_t>> reply;
    bool resume = false;
};

inline kernel_answer answer_request(std::span<const std::uint8_t> body, simulated_memory& memory) {
    const auto request = kd::decode_manipulate(body);
    if (!request) return {};  // too short to be a request: nothing to answer
    if (request->api == kd::manipulate_api::continue_ || request->api == kd::manipulate_api::continue2)
        return {std::nullopt, true};
    kd::manipulate_header reply = *request;
    std::vector<std::uint8_t> data;
    reply.return_status = kd::status::success;
    if (request->api == kd::manipulate_api::read_virtual_memory ||
        request->api == kd::manipulate_api::read_physical_memory) {
        const std::size_t n = std::min<std::size_t>(request->memory.transfer_count, max_read);
        data.resize(n);
        for (std::size_t i = 0; i < n; ++i) data[i] = memory.read(request->memory.address + i);
        reply.memory.actual_bytes = static_cast<std::uint32_t>(n);
    } else if (request->api == kd::manipulate_api::write_virtual_memory ||
               request->api == kd::manipulate_api::write_physical_memory) {
        const auto bytes = body.subspan(kd::manipulate_header_size);
        const std::size_t n = std::min<std::size_t>(request->memory.transfer_count, bytes.size());
        const bool written = memory.write(request->memory.address, bytes.first(n));
        reply.return_status = written ? kd::status::success : kd::status::unsuccessful;
        reply.memory.actual_bytes = written ? static_cast<std::uint32_t>(n) : 0;
    } else if (request->api == kd::manipulate_api::get_version) {
        reply.version = {.major_version = 0xF, .minor_version = 19041, .protocol_version = 6,
                         .flags = 0x47, .machine_type = 0x8664, .max_packet_type = 12,
                         .max_state_change = 3, .max_manipulate = 0x33, .kern_base = 0xFFFFF80000000000ull};
    } else {
        reply.return_status = kd::status::unsuccessful;
    }
    return {manipulate_request(reply, data), false};
}

}  // namespace kdcom::sim
