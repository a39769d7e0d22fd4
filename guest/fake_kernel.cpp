// The fake kernel's debugger loop, shaped like ntoskrnl's KdpReportExceptionStateChange and
// KdpSendWaitContinue (see ReactOS ntoskrnl/kd64/kdapi.c for the real one's structure).
#include "kdcom/guest/fake_kernel.hpp"

#include <algorithm>
#include <thread>

#include "kdcom/kd/context_amd64.hpp"
#include "kdcom/kd/debug_io.hpp"
#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/state_change.hpp"
#include "kdcom/kd/status.hpp"
#include "kdcom/wire/constants.hpp"
#include "kdcom/wire/packet_type.hpp"

namespace kdcom::guest {
namespace {

namespace status = kd::status;
constexpr std::uint16_t max_data = static_cast<std::uint16_t>(wire::default_max_body - kd::manipulate_header_size);
static_assert(max_data <= fake_kernel::max_reply_data);
static_assert(fake_kernel::context_size == kd::context_amd64::size);

// Control space addresses on AMD64 (ReactOS KdpSysReadControlSpace).
constexpr std::uint64_t control_kpcr = 0, control_kprcb = 1, control_special_registers = 2, control_thread = 3;

std::uint16_t as_type(wire::packet_type t) { return static_cast<std::uint16_t>(t); }

}  // namespace

bool fake_kernel::failed(const char* what) {
    error_ = std::string(what) + ": " + kdcom_guest_error(guest_);
    return false;
}

void fake_kernel::power_on_state() {
    kd::context_amd64 c;
    c.set_flags(kd::amd64::context_flags::all);
    c.set(kd::amd64::rip, options_.kern_base + 0x1000);
    c.set(kd::amd64::rsp, options_.kern_base + 0x80000);
    c.set(kd::amd64::seg_cs, 0x10);
    c.set(kd::amd64::seg_ss, 0x18);
    c.set(kd::amd64::seg_ds, 0x2B);
    c.set(kd::amd64::seg_es, 0x2B);
    c.set(kd::amd64::seg_fs, 0x53);
    c.set(kd::amd64::seg_gs, 0x2B);
    c.set(kd::amd64::eflags, 0x246);
    c.set(kd::amd64::mx_csr, 0x1F80);
    std::copy(c.bytes().begin(), c.bytes().end(), context_.begin());
    for (const auto& [handle, b] : breakpoints_) memory_.write(b.address - options_.kern_base, {&b.original, 1});
    breakpoints_.clear();
    msrs_ = {{0x1B, 0xFEE00900},                              // IA32_APIC_BASE
             {0xC0000080, 0xD01},                             // IA32_EFER: SCE, LME, LMA, NXE
             {0xC0000082, options_.kern_base + 0x3000},       // IA32_LSTAR: the system call entry
             {0xC0000101, options_.kern_base + 0x10000}};     // IA32_GS_BASE: the KPCR
    io_ports_.assign(0x10000, 0xFF);  // nothing decodes a port: reads float high
    special_registers_.fill(0);
}

std::uint64_t fake_kernel::rip() const { return kd::context_amd64(context_).get(kd::amd64::rip); }

void fake_kernel::set_rip(std::uint64_t value) {
    kd::context_amd64 c(context_);
    c.set(kd::amd64::rip, value);
    std::copy(c.bytes().begin(), c.bytes().end(), context_.begin());
}

std::optional<fake_kernel::stop_point> fake_kernel::next_breakpoint_hit() const {
    // The breakpoint after the current instruction, in address order, wrapping round.
    std::optional<stop_point> first, next;
    for (const auto& [handle, b] : breakpoints_) {
        if (!first || b.address < first->address) first = stop_point{status::breakpoint, b.address};
        if (b.address > rip() && (!next || b.address < next->address)) next = stop_point{status::breakpoint, b.address};
    }
    return next ? next : first;
}

bool fake_kernel::run(const std::atomic<bool>& stop) {
    bool just_resumed = false;
    while (!stop.load(std::memory_order_relaxed)) {
        if (rebooted_) {
            rebooted_ = false;
            if (!print("fake kernel: rebooted\n")) return false;
        }
        const int r = kdcom_guest_receive_packet(guest_, as_type(wire::packet_type::poll_breakin), nullptr, 0, nullptr,
                                                 nullptr, 0, nullptr, 0);
        if (r == KDCOM_GUEST_ERROR) return failed("polling for a break-in");
        if (r == KDCOM_GUEST_RECEIVED) {
            if (!break_in(&stop)) return false;
            just_resumed = true;
            continue;
        }
        std::this_thread::sleep_for(options_.tick);
        if (just_resumed) {
            just_resumed = false;
            if (const auto hit = next_breakpoint_hit()) {
                stop_ = *hit;
                if (!serve_stopped(&stop)) return false;
                just_resumed = true;
            }
        }
    }
    return true;
}

bool fake_kernel::report_stop() {
    set_rip(stop_.address);
    kd::state_change_header h;
    h.exception.code = stop_.code;
    h.program_counter = h.exception.address = stop_.address;
    h.instruction_count = 1;
    h.instruction_stream[0] = 0xCC;  // int3
    std::uint8_t header[kd::state_change_header_size];
    kd::encode_state_change(h, header);
    const int r = kdcom_guest_send_packet(guest_, as_type(wire::packet_type::state_change64), header, sizeof header,
                                          nullptr, 0);
    if (r == KDCOM_GUEST_ERROR) return failed("reporting a stop");
    return true;
}

bool fake_kernel::break_in(const std::atomic<bool>* stop) {
    stop_ = {status::breakpoint, rip()};
    return serve_stopped(stop);
}

bool fake_kernel::serve_stopped(const std::atomic<bool>* stop) {
    ++stats_.breaks;
    if (!report_stop()) return false;
    std::uint8_t header[kd::manipulate_header_size];
    std::vector<std::uint8_t> data(max_data);
    for (;;) {
        std::uint16_t header_length = 0, data_length = 0;
        const int r = kdcom_guest_receive_packet(guest_, as_type(wire::packet_type::state_manipulate), header, sizeof header,
                                                 &header_length, data.data(), max_data, &data_length,
                                                 static_cast<std::uint32_t>(options_.receive_timeout.count()));
        if (r == KDCOM_GUEST_ERROR) return failed("waiting for the debugger");
        if (r == KDCOM_GUEST_TIMEOUT) {  // a stopped kernel waits as long as it takes
            if (stop && stop->load(std::memory_order_relaxed)) return true;
            continue;
        }
        if (r == KDCOM_GUEST_RESEND) {           // a new debugger: tell it where we are
            ++stats_.state_changes_resent;
            if (!report_stop()) return false;
            continue;
        }
        next_step next = next_step::serve;
        if (!serve({header, header_length}, {data.data(), data_length}, next)) return false;
        if (next == next_step::resume) return true;
        if (next == next_step::trace) {  // one instruction, and stop again
            stop_ = {status::single_step, rip() + 1};
            if (!report_stop()) return false;
        }
    }
}

std::uint32_t fake_kernel::serve_control_space(bool write, std::uint64_t address, std::span<const std::uint8_t> in,
                                               std::span<std::uint8_t> out, std::size_t& moved) {
    moved = 0;
    if (address == control_special_registers) {
        if (write) {
            moved = std::min(in.size(), special_registers_.size());
            std::copy_n(in.begin(), moved, special_registers_.begin());
        } else {
            moved = std::min(out.size(), special_registers_.size());
            std::copy_n(special_registers_.begin(), moved, out.begin());
        }
        return status::success;
    }
    std::uint64_t pointer = 0;
    if (address == control_kpcr) pointer = options_.kern_base + 0x10000;
    else if (address == control_kprcb) pointer = options_.kern_base + 0x10180;
    else if (address == control_thread) pointer = options_.kern_base + 0x20000;
    else return status::unsuccessful;
    if (write || out.size() < 8) return status::unsuccessful;  // pointers are read-only, and 8 bytes
    for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(pointer >> (8 * i));
    moved = 8;
    return status::success;
}

bool fake_kernel::serve(std::span<const std::uint8_t> header, std::span<const std::uint8_t> data, next_step& next) {
    auto request = kd::decode_manipulate(header);
    if (!request) return true;  // not a manipulate header: ignore it, as the real kernel does
    ++stats_.requests;
    kd::manipulate_header reply = *request;
    reply.return_status = status::success;
    // The reply's data: a view into reply_buffer_ (kept between requests: a dump makes one reply
    // per 3944 bytes, and a fresh zeroed vector each time showed up in its profile) or context_.
    std::span<const std::uint8_t> reply_data;
    const auto physical = [&](std::uint64_t address, bool is_virtual) {
        return is_virtual ? address - options_.kern_base : address;  // wraps far away if below kern_base
    };
    switch (request->api) {
    case kd::manipulate_api::continue_:
    case kd::manipulate_api::continue2:  // no reply: the kernel runs on
        next = request->continuation.trace_flag != 0 && request->api == kd::manipulate_api::continue2 ? next_step::trace
                                                                                                    : next_step::resume;
        return true;
    case kd::manipulate_api::reboot:  // no reply: it starts again
        if (reboot_machine_) reboot_machine_();
        power_on_state();
        rebooted_ = true;
        ++stats_.reboots;
        next = next_step::resume;
        return true;
    case kd::manipulate_api::get_version:
        reply.version = {10, 19041, 6, 2, 0x47, 0x8664, static_cast<std::uint8_t>(wire::packet_type::max),
                         3, 0x31, 0, options_.kern_base, options_.kern_base + 0x100000, options_.kern_base + 0x200000};
        break;
    case kd::manipulate_api::read_virtual_memory:
    case kd::manipulate_api::read_physical_memory: {
        const auto into = std::span(reply_buffer_).first(std::min<std::size_t>(request->memory.transfer_count, max_data));
        const std::size_t n = memory_.read(
            physical(request->memory.address, request->api == kd::manipulate_api::read_virtual_memory), into);
        reply_data = into.first(n);
        reply.memory.actual_bytes = static_cast<std::uint32_t>(n);
        if (n == 0 && request->memory.transfer_count > 0) reply.return_status = status::unsuccessful;
        stats_.bytes_read += n;
        break;
    }
    case kd::manipulate_api::write_virtual_memory:
    case kd::manipulate_api::write_physical_memory: {
        const std::size_t n = memory_.write(
            physical(request->memory.address, request->api == kd::manipulate_api::write_virtual_memory),
            data.first(std::min<std::size_t>(data.size(), request->memory.transfer_count)));
        reply.memory.actual_bytes = static_cast<std::uint32_t>(n);
        if (n == 0 && request->memory.transfer_count > 0) reply.return_status = status::unsuccessful;
        stats_.bytes_written += n;
        break;
    }
    case kd::manipulate_api::read_control_space:
    case kd::manipulate_api::write_control_space: {
        const bool write = request->api == kd::manipulate_api::write_control_space;
        const auto out = std::span(reply_buffer_).first(std::min<std::size_t>(request->memory.transfer_count, max_data));
        std::size_t moved = 0;
        reply.return_status =
            request->processor != 0 ? status::unsuccessful  // one processor
                                    : serve_control_space(write, request->memory.address,
                                                          data.first(std::min<std::size_t>(data.size(), request->memory.transfer_count)),
                                                          out, moved);
        reply.memory.actual_bytes = static_cast<std::uint32_t>(moved);
        if (!write) reply_data = out.first(moved);
        break;
    }
    case kd::manipulate_api::get_context: reply_data = context_; break;  // context_ outlives the send
    case kd::manipulate_api::set_context:
        std::copy_n(data.begin(), std::min(data.size(), context_.size()), context_.begin());
        break;
    case kd::manipulate_api::read_msr: {
        const auto m = msrs_.find(request->msr.msr);
        if (m == msrs_.end()) reply.return_status = status::no_such_device;  // a #GP on real hardware
        else reply.msr.value = m->second;
        break;
    }
    case kd::manipulate_api::write_msr:
        if (msrs_.size() >= max_msrs && !msrs_.contains(request->msr.msr)) reply.return_status = status::no_such_device;
        else msrs_[request->msr.msr] = request->msr.value;
        break;
    case kd::manipulate_api::read_io_space:
    case kd::manipulate_api::write_io_space: {
        const auto size = request->io.data_size;
        if ((size != 1 && size != 2 && size != 4) || request->io.address + size > io_ports_.size()) {
            reply.return_status = status::invalid_parameter;
            break;
        }
        for (std::uint32_t i = 0; i < size; ++i) {
            auto& port = io_ports_[request->io.address + i];
            if (request->api == kd::manipulate_api::write_io_space) port = static_cast<std::uint8_t>(request->io.value >> (8 * i));
            else reply.io.value = (i == 0 ? 0 : reply.io.value) | std::uint32_t{port} << (8 * i);
        }
        break;
    }
    case kd::manipulate_api::write_breakpoint: {
        std::uint8_t original = 0;
        const std::uint64_t at = physical(request->breakpoint.address, true);
        const std::uint8_t int3 = 0xCC;
        if (breakpoints_.size() >= max_breakpoints || memory_.read(at, {&original, 1}) != 1 ||
            memory_.write(at, {&int3, 1}) != 1) {
            reply.return_status = status::unsuccessful;
            break;
        }
        reply.breakpoint.handle = next_handle_++;
        breakpoints_[reply.breakpoint.handle] = {request->breakpoint.address, original};
        break;
    }
    case kd::manipulate_api::restore_breakpoint: {
        const auto b = breakpoints_.find(request->breakpoint.handle);
        if (b == breakpoints_.end()) {
            reply.return_status = status::unsuccessful;
            break;
        }
        memory_.write(physical(b->second.address, true), {&b->second.original, 1});
        breakpoints_.erase(b);
        break;
    }
    default: reply.return_status = status::not_implemented; break;
    }
    std::uint8_t reply_header[kd::manipulate_header_size];
    kd::encode_manipulate(reply, reply_header);
    const int r = kdcom_guest_send_packet(guest_, as_type(wire::packet_type::state_manipulate), reply_header,
                                          sizeof reply_header, reply_data.data(),
                                          static_cast<std::uint16_t>(reply_data.size()));
    if (r == KDCOM_GUEST_ERROR) return failed("replying to the debugger");
    return true;
}

bool fake_kernel::print(std::string_view text) {
    kd::debug_io_header h;
    h.length_of_string = static_cast<std::uint32_t>(text.size());
    std::uint8_t header[kd::debug_io_header_size];
    kd::encode_debug_io(h, header);
    ++stats_.prints;
    const int r = kdcom_guest_send_packet(guest_, as_type(wire::packet_type::debug_io), header, sizeof header, text.data(),
                                          static_cast<std::uint16_t>(text.size()));
    if (r == KDCOM_GUEST_ERROR) return failed("printing");
    return true;
}

}  // namespace kdcom::guest
