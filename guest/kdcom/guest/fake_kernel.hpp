// A fake Windows kernel for simulators and tests: it behaves toward the debugger like the KD stub
// in ntoskrnl, through the guest library (kd_guest.h). While running it polls for a break-in on
// each tick; when broken in it reports a breakpoint state change and serves the debugger's
// manipulate requests against a memory image until told to continue; it prints with DbgPrint.
//
// Every request a debugger's commands use is served: GetVersion, Read/Write Virtual/Physical
// Memory, Read/Write Control Space (AMD64: 0 the KPCR's address, 1 the KPRCB's, 2 the special
// registers, 3 the current thread's), Get/SetContext (an AMD64 CONTEXT), Read/Write MSR (a few
// preset, any written), Read/Write I/O space (64 Ki ports of memory), Write/RestoreBreakPoint (an
// int3 in memory, at most 32), Continue/Continue2 (with the trace flag it stops again at once with
// STATUS_SINGLE_STEP and Rip one byte on), Reboot (it runs again, breakpoints gone, and says so;
// or the machine restarts, see set_reboot_machine).
// Its "program" visits the breakpoints set: after a Continue it stops at the next one in address
// order, as a running kernel would hit them.
//
// Virtual addresses from kern_base map one to one onto the image's physical addresses.
// Single-threaded: call from the guest's own thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kdcom/guest/kd_guest.h"
#include "kdcom/guest/memory_image.hpp"

namespace kdcom::guest {

struct fake_kernel_options {
    std::uint64_t kern_base = 0xfffff80000000000u;     // virtual address of physical address 0
    std::chrono::milliseconds tick{10};               // break-in poll interval while running
    std::chrono::milliseconds receive_timeout{1000};  // KdReceivePacket's timeout while broken in
};

struct fake_kernel_stats {
    std::uint64_t breaks = 0;          // times it stopped for the debugger
    std::uint64_t requests = 0;        // manipulate requests served
    std::uint64_t bytes_read = 0, bytes_written = 0;
    std::uint64_t prints = 0;
    std::uint64_t state_changes_resent = 0;  // after the debugger reset the link
    std::uint64_t reboots = 0;
};

class fake_kernel {
public:
    // `guest` and `memory` must outlive the kernel.
    fake_kernel(kdcom_guest* guest, memory_image& memory, fake_kernel_options options = {})
        : guest_(guest), memory_(memory), options_(options), context_(context_size, 0), reply_buffer_(max_reply_data) {
        power_on_state();
    }

    // Runs until `stop` is set (true) or the host goes away (false, see error()).
    bool run(const std::atomic<bool>& stop);
    // Stops for the debugger: reports a breakpoint and serves it until it continues (or `stop` is
    // set: the machine is being switched off). Returns false if the host went away. With no
    // debugger, the report gives up and it returns at once.
    bool break_in(const std::atomic<bool>* stop = nullptr);
    // A Reboot request calls `restart`: a kernel in a real machine restarts the machine (it does
    // not return). Without one, the fake kernel starts again by itself, in the same process.
    void set_reboot_machine(std::function<void()> restart) { reboot_machine_ = std::move(restart); }
    // DbgPrint: a droppable KD_DEBUG_IO packet.
    bool print(std::string_view text);

    const fake_kernel_stats& stats() const noexcept { return stats_; }
    const std::string& error() const noexcept { return error_; }

    static constexpr std::size_t context_size = 0x4D0;  // sizeof(CONTEXT) on x64
    static constexpr std::size_t max_reply_data = 4096;  // at least what one KD packet carries after its header
    static constexpr std::size_t max_breakpoints = 32;   // the kernel's breakpoint table
    static constexpr std::size_t max_msrs = 256;         // MSRs a debugger may create by writing

    // Where it stops, and why.
    struct stop_point {
        std::uint32_t code;
        std::uint64_t address;
    };

private:
    struct breakpoint {
        std::uint64_t address;
        std::uint8_t original;
    };
    enum class next_step { serve, resume, trace };

    void power_on_state();
    bool serve_stopped(const std::atomic<bool>* stop);  // at stop_: report it, serve until resumed
    bool report_stop();
    bool serve(std::span<const std::uint8_t> header, std::span<const std::uint8_t> data, next_step& next);
    std::uint32_t serve_control_space(bool write, std::uint64_t address, std::span<const std::uint8_t> in,
                                      std::span<std::uint8_t> out, std::size_t& moved);
    std::optional<stop_point> next_breakpoint_hit() const;
    std::uint64_t rip() const;
    void set_rip(std::uint64_t value);
    bool failed(const char* what);

    kdcom_guest* guest_;
    memory_image& memory_;
    fake_kernel_options options_;
    std::function<void()> reboot_machine_;
    std::vector<std::uint8_t> context_;
    std::vector<std::uint8_t> reply_buffer_;  // a read's reply data, reused from one request to the next
    std::map<std::uint32_t, breakpoint> breakpoints_;  // by handle
    std::uint32_t next_handle_ = 1;
    std::map<std::uint32_t, std::uint64_t> msrs_;
    std::vector<std::uint8_t> io_ports_;
    std::array<std::uint8_t, 0x100> special_registers_{};
    stop_point stop_{};
    bool rebooted_ = false;
    fake_kernel_stats stats_;
    std::string error_;
};

}  // namespace kdcom::guest
