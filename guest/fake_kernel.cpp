// The fake kernel's debugger loop, shaped like ntoskrnl's KdpReportExceptionStateChange and
// KdpSendWaitContinue (see ReactOS ntoskrnl/kd64/kdapi.c for the real one's structure).
#include "kdcom/guest/fake_kernel.hpp"

#include <algorithm>
#include <thread>

#include "kdcom/kd/debug_io.hpp"
#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/state_change.hpp"
#include "kdcom/wire/constants.hpp"
#include "kdcom/wire/packet_type.hpp"

namespace kdcom::guest {
namespace {

constexpr std::uint32_t status_success = 0;
constexpr std::uint32_t status_unsuccessful = 0xC0000001;
constexpr std::uint32_t status_breakpoint = 0x80000003;
constexpr std::uint16_t max_data = static_cast<std::uint16_t>(wire::default_max_body - kd::manipulate_header_size);
static_assert(max_data <= fake_kernel::max_reply_data);

std::uint16_t as_type(wire::packet_type t) { return static_cast<std::uint16_t>(t); }

}  // namespace

bool fake_kernel::failed(const char* what) {
    error_ = std::string(what) + ": " + kdcom_guest_error(guest_);
    return false;
}

bool fake_kernel::run(const std::atomic<bool>& stop) {
    while (!stop.load(std::memory_order_relaxed)) {
        const int r = kdcom_guest_receive_packet(guest_, as_type(wire::packet_type::poll_breakin), nullptr, 0, nullptr,
                                                 nullptr, 0, nullptr, 0);
        if (r == KDCOM_GUEST_ERROR) return failed("polling for a break-in");
        if (r == KDCOM_GUEST_RECEIVED) {
            if (!break_in(&stop)) return false;
            continue;
        }
        std::this_thread::sleep_for(options_.tick);
    }
    return true;
}

bool fake_kernel::report_breakpoint() {
    kd::state_change_header h;
    h.exception.code = status_breakpoint;
    h.program_counter = h.exception.address = options_.kern_base + 0x1000;
    h.instruction_count = 1;
    h.instruction_stream[0] = 0xCC;  // int3
    std::uint8_t header[kd::state_change_header_size];
    kd::encode_state_change(h, header);
    const int r = kdcom_guest_send_packet(guest_, as_type(wire::packet_type::state_change64), header, sizeof header,
                                          nullptr, 0);
    if (r == KDCOM_GUEST_ERROR) return failed("reporting a breakpoint");
    return true;
}

bool fake_kernel::break_in(const std::atomic<bool>* stop) {
    ++stats_.breaks;
    if (!report_breakpoint()) return false;
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
            if (!report_breakpoint()) return false;
            continue;
        }
        bool resume = false;
        if (!serve({header, header_length}, {data.data(), data_length}, resume)) return false;
        if (resume) return true;
    }
}

bool fake_kernel::serve(std::span<const std::uint8_t> header, std::span<const std::uint8_t> data, bool& resume) {
    auto request = kd::decode_manipulate(header);
    if (!request) return true;  // not a manipulate header: ignore it, as the real kernel does
    ++stats_.requests;
    kd::manipulate_header reply = *request;
    reply.return_status = status_success;
    // The reply's data: a view into reply_buffer_ (kept between requests: a dump makes one reply
    // per 3944 bytes, and a fresh zeroed vector each time showed up in its profile) or context_.
    std::span<const std::uint8_t> reply_data;
    const auto physical = [&](std::uint64_t address, bool is_virtual) {
        return is_virtual ? address - options_.kern_base : address;  // wraps far away if below kern_base
    };
    switch (request->api) {
    case kd::manipulate_api::continue_:
    case kd::manipulate_api::continue2: resume = true; return true;  // no reply: the kernel runs on
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
        if (n == 0 && request->memory.transfer_count > 0) reply.return_status = status_unsuccessful;
        stats_.bytes_read += n;
        break;
    }
    case kd::manipulate_api::write_virtual_memory:
    case kd::manipulate_api::write_physical_memory: {
        const std::size_t n = memory_.write(
            physical(request->memory.address, request->api == kd::manipulate_api::write_virtual_memory),
            data.first(std::min<std::size_t>(data.size(), request->memory.transfer_count)));
        reply.memory.actual_bytes = static_cast<std::uint32_t>(n);
        if (n == 0 && request->memory.transfer_count > 0) reply.return_status = status_unsuccessful;
        stats_.bytes_written += n;
        break;
    }
    case kd::manipulate_api::get_context: reply_data = context_; break;  // context_ outlives the send
    case kd::manipulate_api::set_context:
        std::copy_n(data.begin(), std::min(data.size(), context_.size()), context_.begin());
        break;
    default: reply.return_status = status_unsuccessful; break;  // not implemented here
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
