// DBGKD_MANIPULATE_STATE64: the 0x38-byte message header of every KD_STATE_MANIPULATE packet (a
// debugger's request and the target's reply), with the members of every API a debugger uses:
// GetVersion, Read/Write Virtual, Physical and Control memory, Get/SetContext, Continue/Continue2,
// Read/Write I/O space, Read/Write MSR, Write/RestoreBreakPoint, Reboot (no members). The message
// data follows the header in the packet body (the bytes read or to write, a CONTEXT record).
//
// Layout (x64, little-endian; ReactOS windbgkd.h): ApiNumber u32 @0, ProcessorLevel u16 @4,
// Processor u16 @6, ReturnStatus u32 @8, then a union @0x10 (8-byte aligned) of:
//   ReadMemory/WriteMemory (also Read/WriteControlSpace): TargetBaseAddress u64 @0x10,
//                           TransferCount u32 @0x18, ActualBytesRead/Written u32 @0x1C
//   ReadWriteIo64: IoAddress u64 @0x10, DataSize u32 @0x18 (1, 2 or 4), DataValue u32 @0x1C
//   ReadWriteMsr: Msr u32 @0x10, DataValueLow u32 @0x14, DataValueHigh u32 @0x18
//   WriteBreakPoint64: BreakPointAddress u64 @0x10, BreakPointHandle u32 @0x18
//   RestoreBreakPoint: BreakPointHandle u32 @0x10
//   GetContext: Unused u32 @0x10;  SetContext: ContextFlags u32 @0x10
//   Continue: ContinueStatus u32 @0x10
//   Continue2 (packed to 4): ContinueStatus u32 @0x10, then the AMD64 control set: TraceFlag u32
//                           @0x14, Dr7 u64 @0x18, CurrentSymbolStart u64 @0x20, CurrentSymbolEnd u64 @0x28
//   GetVersion64: MajorVersion u16 @0x10, MinorVersion u16 @0x12, ProtocolVersion u8 @0x14,
//                 KdSecondaryVersion u8 @0x15, Flags u16 @0x16, MachineType u16 @0x18,
//                 MaxPacketType u8 @0x1A, MaxStateChange u8 @0x1B, MaxManipulate u8 @0x1C,
//                 Simulation u8 @0x1D, Unused u16 @0x1E, KernBase u64 @0x20,
//                 PsLoadedModuleList u64 @0x28, DebuggerDataList u64 @0x30
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include <boost/endian/buffers.hpp>

#include "kdcom/kd/api.hpp"

namespace kdcom::kd {

namespace wire_layout {
using u8 = std::uint8_t;
using u16 = boost::endian::little_uint16_buf_t;
using u32 = boost::endian::little_uint32_buf_t;
using u64 = boost::endian::little_uint64_buf_t;

struct memory64 {
    u64 target_base_address;
    u32 transfer_count;
    u32 actual_bytes;
};
struct read_write_io64 {
    u64 io_address;
    u32 data_size;
    u32 data_value;
};
struct read_write_msr {
    u32 msr;
    u32 data_value_low;
    u32 data_value_high;
};
struct write_breakpoint64 {
    u64 breakpoint_address;
    u32 breakpoint_handle;
    u32 alignment;  // the 8-byte alignment the C struct has
};
struct continue2 {
    u32 continue_status;
    u32 trace_flag;
    u64 dr7;
    u64 current_symbol_start;
    u64 current_symbol_end;
};
struct get_version64 {
    u16 major_version, minor_version;
    u8 protocol_version, kd_secondary_version;
    u16 flags, machine_type;
    u8 max_packet_type, max_state_change, max_manipulate, simulation;
    u16 unused;
    u64 kern_base, ps_loaded_module_list, debugger_data_list;
};
struct manipulate_state64 {
    u32 api_number;
    u16 processor_level, processor;
    u32 return_status;
    u32 alignment;  // the union is 8-byte aligned
    union {
        memory64 memory;
        read_write_io64 io;
        read_write_msr msr;
        write_breakpoint64 breakpoint;
        u32 breakpoint_handle;  // RestoreBreakPoint
        u32 context_flags;  // GetContext (unused) and SetContext
        u32 continue_status;
        continue2 continue2_;
        get_version64 get_version;
        u8 space[0x28];
    } u;
};
static_assert(sizeof(memory64) == 0x10);
static_assert(sizeof(read_write_io64) == 0x10);
static_assert(sizeof(read_write_msr) == 0x0C);
static_assert(sizeof(write_breakpoint64) == 0x10);
static_assert(sizeof(continue2) == 0x20, "DBGKD_CONTINUE2 is packed to 4 bytes");
static_assert(sizeof(get_version64) == 0x28);
static_assert(sizeof(manipulate_state64) == 0x38, "DBGKD_MANIPULATE_STATE64 is 0x38 bytes");
}  // namespace wire_layout

inline constexpr std::size_t manipulate_header_size = sizeof(wire_layout::manipulate_state64);

struct memory_transfer {
    std::uint64_t address = 0;
    std::uint32_t transfer_count = 0;
    std::uint32_t actual_bytes = 0;  // read or written
};

struct version_info {
    std::uint16_t major_version = 0, minor_version = 0;
    std::uint8_t protocol_version = 0, kd_secondary_version = 0;
    std::uint16_t flags = 0, machine_type = 0;
    std::uint8_t max_packet_type = 0, max_state_change = 0, max_manipulate = 0, simulation = 0;
    std::uint64_t kern_base = 0, ps_loaded_module_list = 0, debugger_data_list = 0;
};

struct io_access {
    std::uint64_t address = 0;    // the port
    std::uint32_t data_size = 0;  // bytes: 1, 2 or 4
    std::uint32_t value = 0;      // written, or read (in the reply)
};

struct msr_access {
    std::uint32_t msr = 0;
    std::uint64_t value = 0;  // written, or read (in the reply); split low/high on the wire
};

struct breakpoint_info {
    std::uint64_t address = 0;  // WriteBreakPoint only
    std::uint32_t handle = 0;   // the target's, in WriteBreakPoint's reply and RestoreBreakPoint's request
};

struct continue_info {
    std::uint32_t status = 0;  // NTSTATUS to continue with
    std::uint32_t trace_flag = 0;  // Continue2 only, from here on
    std::uint64_t dr7 = 0, current_symbol_start = 0, current_symbol_end = 0;
};

// A decoded manipulate header. Which of the union views means anything depends on `api`.
struct manipulate_header {
    std::uint32_t api = 0;
    std::uint16_t processor_level = 0, processor = 0;
    std::uint32_t return_status = 0;
    memory_transfer memory;        // Read/Write Virtual/Physical Memory, Read/Write Control Space
    io_access io;                  // Read/Write I/O space
    msr_access msr;                // Read/Write MSR
    breakpoint_info breakpoint;    // Write/RestoreBreakPoint
    std::uint32_t context_flags = 0;  // Get/SetContext
    continue_info continuation;    // Continue, Continue2
    version_info version;          // GetVersion
};

inline bool is_memory_api(std::uint32_t api) noexcept {
    return api == manipulate_api::read_virtual_memory || api == manipulate_api::write_virtual_memory ||
           api == manipulate_api::read_physical_memory || api == manipulate_api::write_physical_memory;
}

// The APIs whose union member is DBGKD_READ_MEMORY64/WRITE_MEMORY64: memory, and control space.
inline bool has_memory_layout(std::uint32_t api) noexcept {
    return is_memory_api(api) || api == manipulate_api::read_control_space ||
           api == manipulate_api::write_control_space;
}

// Whether the API reads something into the reply's data (as opposed to writing the request's).
inline bool is_read_api(std::uint32_t api) noexcept {
    return api == manipulate_api::read_virtual_memory || api == manipulate_api::read_physical_memory ||
           api == manipulate_api::read_control_space;
}

// Reads the header at the start of a KD_STATE_MANIPULATE body; nullopt if the body is shorter
// than 0x38 bytes. The API number is not checked: unknown ones decode with only the common part.
inline std::optional<manipulate_header> decode_manipulate(std::span<const std::uint8_t> body) noexcept {
    if (body.size() < manipulate_header_size) return std::nullopt;
    wire_layout::manipulate_state64 w;
    std::memcpy(&w, body.data(), sizeof w);
    manipulate_header h;
    h.api = w.api_number.value();
    h.processor_level = w.processor_level.value();
    h.processor = w.processor.value();
    h.return_status = w.return_status.value();
    if (has_memory_layout(h.api)) {
        h.memory = {w.u.memory.target_base_address.value(), w.u.memory.transfer_count.value(),
                    w.u.memory.actual_bytes.value()};
    } else if (h.api == manipulate_api::read_io_space || h.api == manipulate_api::write_io_space) {
        h.io = {w.u.io.io_address.value(), w.u.io.data_size.value(), w.u.io.data_value.value()};
    } else if (h.api == manipulate_api::read_msr || h.api == manipulate_api::write_msr) {
        h.msr = {w.u.msr.msr.value(),
                 std::uint64_t{w.u.msr.data_value_high.value()} << 32 | w.u.msr.data_value_low.value()};
    } else if (h.api == manipulate_api::write_breakpoint) {
        h.breakpoint = {w.u.breakpoint.breakpoint_address.value(), w.u.breakpoint.breakpoint_handle.value()};
    } else if (h.api == manipulate_api::restore_breakpoint) {
        h.breakpoint.handle = w.u.breakpoint_handle.value();
    } else if (h.api == manipulate_api::get_context || h.api == manipulate_api::set_context) {
        h.context_flags = w.u.context_flags.value();
    } else if (h.api == manipulate_api::continue_) {
        h.continuation.status = w.u.continue_status.value();
    } else if (h.api == manipulate_api::continue2) {
        const auto& c = w.u.continue2_;
        h.continuation = {c.continue_status.value(), c.trace_flag.value(), c.dr7.value(),
                          c.current_symbol_start.value(), c.current_symbol_end.value()};
    } else if (h.api == manipulate_api::get_version) {
        const auto& v = w.u.get_version;
        h.version = {v.major_version.value(),   v.minor_version.value(),  v.protocol_version,
                     v.kd_secondary_version,    v.flags.value(),          v.machine_type.value(),
                     v.max_packet_type,         v.max_state_change,       v.max_manipulate,
                     v.simulation,              v.kern_base.value(),      v.ps_loaded_module_list.value(),
                     v.debugger_data_list.value()};
    }
    return h;
}

// Writes the 0x38-byte header for `h` (the union part chosen by h.api; the rest zero) into
// `out`, which must hold at least manipulate_header_size bytes. Returns the bytes written.
inline std::size_t encode_manipulate(const manipulate_header& h, std::span<std::uint8_t> out) noexcept {
    if (out.size() < manipulate_header_size) return 0;
    wire_layout::manipulate_state64 w;
    std::memset(&w, 0, sizeof w);
    w.api_number = h.api;
    w.processor_level = h.processor_level;
    w.processor = h.processor;
    w.return_status = h.return_status;
    if (has_memory_layout(h.api)) {
        w.u.memory.target_base_address = h.memory.address;
        w.u.memory.transfer_count = h.memory.transfer_count;
        w.u.memory.actual_bytes = h.memory.actual_bytes;
    } else if (h.api == manipulate_api::read_io_space || h.api == manipulate_api::write_io_space) {
        w.u.io.io_address = h.io.address;
        w.u.io.data_size = h.io.data_size;
        w.u.io.data_value = h.io.value;
    } else if (h.api == manipulate_api::read_msr || h.api == manipulate_api::write_msr) {
        w.u.msr.msr = h.msr.msr;
        w.u.msr.data_value_low = static_cast<std::uint32_t>(h.msr.value);
        w.u.msr.data_value_high = static_cast<std::uint32_t>(h.msr.value >> 32);
    } else if (h.api == manipulate_api::write_breakpoint) {
        w.u.breakpoint.breakpoint_address = h.breakpoint.address;
        w.u.breakpoint.breakpoint_handle = h.breakpoint.handle;
    } else if (h.api == manipulate_api::restore_breakpoint) {
        w.u.breakpoint_handle = h.breakpoint.handle;
    } else if (h.api == manipulate_api::get_context || h.api == manipulate_api::set_context) {
        w.u.context_flags = h.context_flags;
    } else if (h.api == manipulate_api::continue_) {
        w.u.continue_status = h.continuation.status;
    } else if (h.api == manipulate_api::continue2) {
        auto& c = w.u.continue2_;
        c.continue_status = h.continuation.status;
        c.trace_flag = h.continuation.trace_flag;
        c.dr7 = h.continuation.dr7;
        c.current_symbol_start = h.continuation.current_symbol_start;
        c.current_symbol_end = h.continuation.current_symbol_end;
    } else if (h.api == manipulate_api::get_version) {
        auto& v = w.u.get_version;
        const auto& s = h.version;
        v.major_version = s.major_version;
        v.minor_version = s.minor_version;
        v.protocol_version = s.protocol_version;
        v.kd_secondary_version = s.kd_secondary_version;
        v.flags = s.flags;
        v.machine_type = s.machine_type;
        v.max_packet_type = s.max_packet_type;
        v.max_state_change = s.max_state_change;
        v.max_manipulate = s.max_manipulate;
        v.simulation = s.simulation;
        v.kern_base = s.kern_base;
        v.ps_loaded_module_list = s.ps_loaded_module_list;
        v.debugger_data_list = s.debugger_data_list;
    }
    std::memcpy(out.data(), &w, sizeof w);
    return sizeof w;
}

// Whether `reply` answers `request`: the same API and, where the request names what it acts on
// (an address and count, a port, an MSR, a breakpoint's address), the same target. A reply a
// peer sent twice (Xen's kdd executes a repeated request twice) then cannot pass for the answer
// to the next request.
inline bool is_reply_to(const manipulate_header& request, const manipulate_header& reply) noexcept {
    if (reply.api != request.api) return false;
    if (has_memory_layout(request.api))
        return reply.memory.address == request.memory.address &&
               reply.memory.transfer_count == request.memory.transfer_count;
    if (request.api == manipulate_api::read_io_space || request.api == manipulate_api::write_io_space)
        return reply.io.address == request.io.address && reply.io.data_size == request.io.data_size;
    if (request.api == manipulate_api::read_msr || request.api == manipulate_api::write_msr)
        return reply.msr.msr == request.msr.msr;
    if (request.api == manipulate_api::write_breakpoint) return reply.breakpoint.address == request.breakpoint.address;
    if (request.api == manipulate_api::restore_breakpoint) return reply.breakpoint.handle == request.breakpoint.handle;
    return true;
}

}  // namespace kdcom::kd
