// DBGKD_ANY_WAIT_STATE_CHANGE for x64: the 0xF0-byte message header of a KD_STATE_CHANGE64
// packet, which a target sends when it stops (an exception, a breakpoint, a break-in) or loads or
// unloads an image. For LoadSymbols the message data is the image's path name.
//
// Layout (little-endian; ReactOS windbgkd.h): NewState u32 @0, ProcessorLevel u16 @4, Processor
// u16 @6, NumberProcessors u32 @8, Thread u64 @0x10, ProgramCounter u64 @0x18, then a union @0x20
// (0xA0 bytes) of:
//   Exception (DBGKM_EXCEPTION64): ExceptionCode u32 @0x20, ExceptionFlags u32 @0x24,
//     ExceptionRecord u64 @0x28, ExceptionAddress u64 @0x30, NumberParameters u32 @0x38,
//     ExceptionInformation u64[15] @0x40, FirstChance u32 @0xB8
//   LoadSymbols (DBGKD_LOAD_SYMBOLS64): PathNameLength u32 @0x20, BaseOfDll u64 @0x28,
//     ProcessId u64 @0x30, CheckSum u32 @0x38, SizeOfImage u32 @0x3C, UnloadSymbols u8 @0x40
// and the AMD64 control report @0xC0: Dr6 u64, Dr7 u64, EFlags u32, InstructionCount u16,
// ReportFlags u16, InstructionStream u8[16], SegCs, SegDs, SegEs, SegFs u16.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include <boost/endian/buffers.hpp>

#include "kdcom/kd/api.hpp"

namespace kdcom::kd {

namespace wire_layout {
struct exception64 {
    boost::endian::little_uint32_buf_t code, flags;
    boost::endian::little_uint64_buf_t record, address;
    boost::endian::little_uint32_buf_t number_parameters, alignment;
    boost::endian::little_uint64_buf_t information[15];
    boost::endian::little_uint32_buf_t first_chance, tail_alignment;
};
struct load_symbols64 {
    boost::endian::little_uint32_buf_t path_name_length, alignment;
    boost::endian::little_uint64_buf_t base_of_dll, process_id;
    boost::endian::little_uint32_buf_t checksum, size_of_image;
    std::uint8_t unload_symbols;
    std::uint8_t tail[7];
};
struct amd64_control_report {
    boost::endian::little_uint64_buf_t dr6, dr7;
    boost::endian::little_uint32_buf_t eflags;
    boost::endian::little_uint16_buf_t instruction_count, report_flags;
    std::uint8_t instruction_stream[16];
    boost::endian::little_uint16_buf_t seg_cs, seg_ds, seg_es, seg_fs;
};
struct wait_state_change64 {
    boost::endian::little_uint32_buf_t new_state;
    boost::endian::little_uint16_buf_t processor_level, processor;
    boost::endian::little_uint32_buf_t number_processors, alignment;
    boost::endian::little_uint64_buf_t thread, program_counter;
    union {
        exception64 exception;
        load_symbols64 load_symbols;
        std::uint8_t space[0xA0];
    } u;
    amd64_control_report control_report;
};
static_assert(sizeof(exception64) == 0xA0, "DBGKM_EXCEPTION64");
static_assert(sizeof(load_symbols64) == 0x28, "DBGKD_LOAD_SYMBOLS64");
static_assert(sizeof(amd64_control_report) == 0x30, "AMD64_DBGKD_CONTROL_REPORT");
static_assert(sizeof(wait_state_change64) == 0xF0, "DBGKD_ANY_WAIT_STATE_CHANGE on x64");
}  // namespace wire_layout

inline constexpr std::size_t state_change_header_size = sizeof(wire_layout::wait_state_change64);

struct exception_info {
    std::uint32_t code = 0;  // e.g. 0x80000003 STATUS_BREAKPOINT
    std::uint32_t flags = 0;
    std::uint64_t address = 0;
    std::uint32_t number_parameters = 0;  // at most 15 are carried
    std::array<std::uint64_t, 15> information{};
    bool first_chance = true;
};

struct load_symbols_info {
    std::uint32_t path_name_length = 0;  // bytes of path name in the message data
    std::uint64_t base_of_dll = 0, process_id = 0;
    std::uint32_t checksum = 0, size_of_image = 0;
    bool unload = false;
};

struct state_change_header {
    std::uint32_t new_state = state_change::exception;
    std::uint16_t processor_level = 0, processor = 0;
    std::uint32_t number_processors = 1;
    std::uint64_t thread = 0, program_counter = 0;
    exception_info exception;        // new_state == exception
    load_symbols_info load_symbols;  // new_state == load_symbols
    std::uint64_t dr6 = 0, dr7 = 0;
    std::uint32_t eflags = 0;
    std::uint16_t instruction_count = 0;  // bytes of instruction_stream that are meaningful
    std::uint16_t report_flags = 3;       // REPORT_INCLUDES_SEGS | REPORT_STANDARD_CS
    std::array<std::uint8_t, 16> instruction_stream{};
    std::uint16_t seg_cs = 0x10, seg_ds = 0x2B, seg_es = 0x2B, seg_fs = 0x53;
};

inline std::optional<state_change_header> decode_state_change(std::span<const std::uint8_t> body) noexcept {
    if (body.size() < state_change_header_size) return std::nullopt;
    wire_layout::wait_state_change64 w;
    std::memcpy(&w, body.data(), sizeof w);
    state_change_header h;
    h.new_state = w.new_state.value();
    h.processor_level = w.processor_level.value();
    h.processor = w.processor.value();
    h.number_processors = w.number_processors.value();
    h.thread = w.thread.value();
    h.program_counter = w.program_counter.value();
    if (h.new_state == state_change::exception) {
        const auto& e = w.u.exception;
        h.exception.code = e.code.value();
        h.exception.flags = e.flags.value();
        h.exception.address = e.address.value();
        h.exception.number_parameters = e.number_parameters.value();
        for (std::size_t i = 0; i < h.exception.information.size(); ++i) h.exception.information[i] = e.information[i].value();
        h.exception.first_chance = e.first_chance.value() != 0;
    } else if (h.new_state == state_change::load_symbols) {
        const auto& l = w.u.load_symbols;
        h.load_symbols = {l.path_name_length.value(), l.base_of_dll.value(), l.process_id.value(),
                          l.checksum.value(),         l.size_of_image.value(), l.unload_symbols != 0};
    }
    const auto& c = w.control_report;
    h.dr6 = c.dr6.value();
    h.dr7 = c.dr7.value();
    h.eflags = c.eflags.value();
    h.instruction_count = c.instruction_count.value();
    h.report_flags = c.report_flags.value();
    std::memcpy(h.instruction_stream.data(), c.instruction_stream, 16);
    h.seg_cs = c.seg_cs.value();
    h.seg_ds = c.seg_ds.value();
    h.seg_es = c.seg_es.value();
    h.seg_fs = c.seg_fs.value();
    return h;
}

// Writes the 0xF0-byte header into `out` (at least state_change_header_size bytes); returns the
// bytes written, 0 if `out` is too small.
inline std::size_t encode_state_change(const state_change_header& h, std::span<std::uint8_t> out) noexcept {
    if (out.size() < state_change_header_size) return 0;
    wire_layout::wait_state_change64 w;
    std::memset(&w, 0, sizeof w);
    w.new_state = h.new_state;
    w.processor_level = h.processor_level;
    w.processor = h.processor;
    w.number_processors = h.number_processors;
    w.thread = h.thread;
    w.program_counter = h.program_counter;
    if (h.new_state == state_change::exception) {
        auto& e = w.u.exception;
        e.code = h.exception.code;
        e.flags = h.exception.flags;
        e.address = h.exception.address;
        e.number_parameters = h.exception.number_parameters;
        for (std::size_t i = 0; i < h.exception.information.size(); ++i) e.information[i] = h.exception.information[i];
        e.first_chance = h.exception.first_chance ? 1 : 0;
    } else if (h.new_state == state_change::load_symbols) {
        auto& l = w.u.load_symbols;
        l.path_name_length = h.load_symbols.path_name_length;
        l.base_of_dll = h.load_symbols.base_of_dll;
        l.process_id = h.load_symbols.process_id;
        l.checksum = h.load_symbols.checksum;
        l.size_of_image = h.load_symbols.size_of_image;
        l.unload_symbols = h.load_symbols.unload ? 1 : 0;
    }
    auto& c = w.control_report;
    c.dr6 = h.dr6;
    c.dr7 = h.dr7;
    c.eflags = h.eflags;
    c.instruction_count = h.instruction_count;
    c.report_flags = h.report_flags;
    std::memcpy(c.instruction_stream, h.instruction_stream.data(), 16);
    c.seg_cs = h.seg_cs;
    c.seg_ds = h.seg_ds;
    c.seg_es = h.seg_es;
    c.seg_fs = h.seg_fs;
    std::memcpy(out.data(), &w, sizeof w);
    return sizeof w;
}

}  // namespace kdcom::kd
