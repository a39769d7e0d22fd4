// The NTSTATUS values KD messages carry: a manipulate reply's ReturnStatus, the exception code of a
// stop, and the status a debugger continues with. Values from the public ntstatus.h (see
// docs/protocol.md); names as WinDbg prints them.
#pragma once

#include <cstdint>
#include <string_view>

namespace kdcom::kd {

namespace status {
inline constexpr std::uint32_t success = 0x00000000;
// Continue statuses: what the stopped target does with the exception it reported.
inline constexpr std::uint32_t dbg_exception_handled = 0x00010001;  // it was handled: resume
inline constexpr std::uint32_t dbg_continue = 0x00010002;           // resume (the usual 'g')
inline constexpr std::uint32_t dbg_exception_not_handled = 0x80010001;  // pass it to the kernel's handlers
// Exception codes a stop reports.
inline constexpr std::uint32_t breakpoint = 0x80000003;   // int3, a break-in
inline constexpr std::uint32_t single_step = 0x80000004;  // a trace step finished
inline constexpr std::uint32_t access_violation = 0xC0000005;
// Reply statuses.
inline constexpr std::uint32_t unsuccessful = 0xC0000001;
inline constexpr std::uint32_t not_implemented = 0xC0000002;
inline constexpr std::uint32_t invalid_parameter = 0xC000000D;
inline constexpr std::uint32_t no_such_file = 0xC000000F;
inline constexpr std::uint32_t no_such_device = 0xC000000E;
}  // namespace status

// Whether an NTSTATUS reports failure (its severity is error).
constexpr bool failed(std::uint32_t ntstatus) noexcept { return (ntstatus >> 30) == 3; }

// "STATUS_BREAKPOINT" and so on for the values above; an empty view for others.
constexpr std::string_view status_name(std::uint32_t ntstatus) noexcept {
    switch (ntstatus) {
    case status::success: return "STATUS_SUCCESS";
    case status::dbg_exception_handled: return "DBG_EXCEPTION_HANDLED";
    case status::dbg_continue: return "DBG_CONTINUE";
    case status::dbg_exception_not_handled: return "DBG_EXCEPTION_NOT_HANDLED";
    case status::breakpoint: return "STATUS_BREAKPOINT";
    case status::single_step: return "STATUS_SINGLE_STEP";
    case status::access_violation: return "STATUS_ACCESS_VIOLATION";
    case status::unsuccessful: return "STATUS_UNSUCCESSFUL";
    case status::not_implemented: return "STATUS_NOT_IMPLEMENTED";
    case status::invalid_parameter: return "STATUS_INVALID_PARAMETER";
    case status::no_such_file: return "STATUS_NO_SUCH_FILE";
    case status::no_such_device: return "STATUS_NO_SUCH_DEVICE";
    }
    return {};
}

}  // namespace kdcom::kd
