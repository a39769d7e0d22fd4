// A fake Windows kernel for simulators and tests: it behaves toward the debugger like the KD stub
// in ntoskrnl, through the guest library (kd_guest.h). While running it polls for a break-in on
// each tick; when broken in it reports a breakpoint state change and serves the debugger's
// manipulate requests (GetVersion, Read/Write Virtual/Physical Memory, Get/SetContext) against a
// memory image until told to continue; it prints with DbgPrint.
//
// Virtual addresses from kern_base map one to one onto the image's physical addresses.
// Single-threaded: call from the guest's own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
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
};

class fake_kernel {
public:
    // `guest` and `memory` must outlive the kernel.
    fake_kernel(kdcom_guest* guest, memory_image& memory, fake_kernel_options options = {})
        : guest_(guest), memory_(memory), options_(options), context_(context_size, 0), reply_buffer_(max_reply_data) {}

    // Runs until `stop` is set (true) or the host goes away (false, see error()).
    bool run(const std::atomic<bool>& stop);
    // Stops for the debugger: reports a breakpoint and serves it until it continues (or `stop` is
    // set: the machine is being switched off). Returns false if the host went away. With no
    // debugger, the report gives up and it returns at once.
    bool break_in(const std::atomic<bool>* stop = nullptr);
    // DbgPrint: a droppable KD_DEBUG_IO packet.
    bool print(std::string_view text);

    const fake_kernel_stats& stats() const noexcept { return stats_; }
    const std::string& error() const noexcept { return error_; }

    static constexpr std::size_t context_size = 0x4D0;  // sizeof(CONTEXT) on x64
    static constexpr std::size_t max_reply_data = 4096;  // at least what one KD packet carries after its header

private:
    bool report_breakpoint();
    bool serve(std::span<const std::uint8_t> header, std::span<const std::uint8_t> data, bool& resume);
    bool failed(const char* what);

    kdcom_guest* guest_;
    memory_image& memory_;
    fake_kernel_options options_;
    std::vector<std::uint8_t> context_;
    std::vector<std::uint8_t> reply_buffer_;  // a read's reply data, reused from one request to the next
    fake_kernel_stats stats_;
    std::string error_;
};

}  // namespace kdcom::guest
