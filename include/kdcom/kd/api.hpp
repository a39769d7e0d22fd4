// KD message numbers: what the first 32-bit field of each KD message header means, by packet type
// (state change, manipulate, debug I/O, trace I/O, file I/O), and their names as kd and WinDbg
// write them. Values from ReactOS sdk/include/reactos/windbgkd.h (see docs/protocol.md).
#pragma once

#include <cstdint>
#include <string_view>

#include "kdcom/wire/packet_type.hpp"

namespace kdcom::kd {

// DBGKD_WAIT_STATE_CHANGE64::NewState (PACKET_TYPE_KD_STATE_CHANGE64).
namespace state_change {
inline constexpr std::uint32_t exception = 0x3030;
inline constexpr std::uint32_t load_symbols = 0x3031;
inline constexpr std::uint32_t command_string = 0x3032;
}  // namespace state_change

// DBGKD_MANIPULATE_STATE64::ApiNumber (PACKET_TYPE_KD_STATE_MANIPULATE).
namespace manipulate_api {
inline constexpr std::uint32_t read_virtual_memory = 0x3130;
inline constexpr std::uint32_t write_virtual_memory = 0x3131;
inline constexpr std::uint32_t get_context = 0x3132;
inline constexpr std::uint32_t set_context = 0x3133;
inline constexpr std::uint32_t write_breakpoint = 0x3134;
inline constexpr std::uint32_t restore_breakpoint = 0x3135;
inline constexpr std::uint32_t continue_ = 0x3136;
inline constexpr std::uint32_t read_control_space = 0x3137;
inline constexpr std::uint32_t write_control_space = 0x3138;
inline constexpr std::uint32_t read_io_space = 0x3139;
inline constexpr std::uint32_t write_io_space = 0x313A;
inline constexpr std::uint32_t reboot = 0x313B;
inline constexpr std::uint32_t continue2 = 0x313C;
inline constexpr std::uint32_t read_physical_memory = 0x313D;
inline constexpr std::uint32_t write_physical_memory = 0x313E;
inline constexpr std::uint32_t get_version = 0x3146;
inline constexpr std::uint32_t read_msr = 0x3152;   // DbgKdReadMachineSpecificRegister
inline constexpr std::uint32_t write_msr = 0x3153;  // DbgKdWriteMachineSpecificRegister
inline constexpr std::uint32_t first = 0x3130;
inline constexpr std::uint32_t last = 0x3160;  // DbgKdSetContextExApi
}  // namespace manipulate_api

// DBGKD_DEBUG_IO::ApiNumber (PACKET_TYPE_KD_DEBUG_IO).
namespace debug_io_api {
inline constexpr std::uint32_t print_string = 0x3230;
inline constexpr std::uint32_t get_string = 0x3231;
}  // namespace debug_io_api

// DBGKD_TRACE_IO::ApiNumber (PACKET_TYPE_KD_TRACE_IO).
inline constexpr std::uint32_t print_trace_api = 0x3330;

// DBGKD_FILE_IO::ApiNumber (PACKET_TYPE_KD_FILE_IO).
namespace file_io_api {
inline constexpr std::uint32_t create_file = 0x3430;
inline constexpr std::uint32_t read_file = 0x3431;
inline constexpr std::uint32_t write_file = 0x3432;
inline constexpr std::uint32_t close_file = 0x3433;
}  // namespace file_io_api

// The name of a message number carried by a packet of `type` ("DbgKdGetVersionApi"), or an empty
// view if that packet type has no such number.
inline std::string_view api_name(wire::packet_type type, std::uint32_t number) noexcept {
    using wire::packet_type;
    switch (type) {
    case packet_type::state_change64:
    case packet_type::state_change32:
        switch (number) {
        case state_change::exception: return "DbgKdExceptionStateChange";
        case state_change::load_symbols: return "DbgKdLoadSymbolsStateChange";
        case state_change::command_string: return "DbgKdCommandStringStateChange";
        }
        return {};
    case packet_type::state_manipulate: {
        static constexpr std::string_view names[] = {
            "DbgKdReadVirtualMemoryApi", "DbgKdWriteVirtualMemoryApi", "DbgKdGetContextApi",
            "DbgKdSetContextApi", "DbgKdWriteBreakPointApi", "DbgKdRestoreBreakPointApi",
            "DbgKdContinueApi", "DbgKdReadControlSpaceApi", "DbgKdWriteControlSpaceApi",
            "DbgKdReadIoSpaceApi", "DbgKdWriteIoSpaceApi", "DbgKdRebootApi",
            "DbgKdContinueApi2", "DbgKdReadPhysicalMemoryApi", "DbgKdWritePhysicalMemoryApi",
            "DbgKdQuerySpecialCallsApi", "DbgKdSetSpecialCallApi", "DbgKdClearSpecialCallsApi",
            "DbgKdSetInternalBreakPointApi", "DbgKdGetInternalBreakPointApi", "DbgKdReadIoSpaceExtendedApi",
            "DbgKdWriteIoSpaceExtendedApi", "DbgKdGetVersionApi", "DbgKdWriteBreakPointExApi",
            "DbgKdRestoreBreakPointExApi", "DbgKdCauseBugCheckApi", {}, {}, {}, {}, {}, {},
            "DbgKdSwitchProcessor", "DbgKdPageInApi", "DbgKdReadMachineSpecificRegister",
            "DbgKdWriteMachineSpecificRegister", "OldVlm1", "OldVlm2", "DbgKdSearchMemoryApi",
            "DbgKdGetBusDataApi", "DbgKdSetBusDataApi", "DbgKdCheckLowMemoryApi",
            "DbgKdClearAllInternalBreakpointsApi", "DbgKdFillMemoryApi", "DbgKdQueryMemoryApi",
            "DbgKdSwitchPartition", "DbgKdWriteCustomBreakpointApi", "DbgKdGetContextExApi",
            "DbgKdSetContextExApi"};
        static_assert(std::size(names) == manipulate_api::last - manipulate_api::first + 1);
        if (number < manipulate_api::first || number > manipulate_api::last) return {};
        return names[number - manipulate_api::first];
    }
    case packet_type::debug_io:
        if (number == debug_io_api::print_string) return "DbgKdPrintStringApi";
        if (number == debug_io_api::get_string) return "DbgKdGetStringApi";
        return {};
    case packet_type::trace_io: return number == print_trace_api ? "DbgKdPrintTraceApi" : std::string_view{};
    case packet_type::file_io:
        switch (number) {
        case file_io_api::create_file: return "DbgKdCreateFileApi";
        case file_io_api::read_file: return "DbgKdReadFileApi";
        case file_io_api::write_file: return "DbgKdWriteFileApi";
        case file_io_api::close_file: return "DbgKdCloseFileApi";
        }
        return {};
    default: return {};
    }
}

}  // namespace kdcom::kd
