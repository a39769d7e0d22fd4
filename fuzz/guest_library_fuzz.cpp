// The guest library (guest/kd_guest.cpp) against a host that answers anything: well-formed
// answers with any status, flags, sequence and body (packets carried with SENT included), PDUs
// with lengths that do not add up, messages of another kind, and a ring scribbled over; and a
// region header scribbled before the guest opens it. Whatever the host does, a call returns
// (an answer or KDCOM_GUEST_ERROR), a received packet fits the buffers it was given (each
// buffer is exactly its capacity, so the address sanitizer sees one byte too many), and nothing
// is read or written outside the region.
//
// The host's side runs between the guest's calls: before each call it puts one message in the
// ring toward the guest, or interrupts the guest (which then fails every call from there on), so
// no call can wait for ever; after each call it takes what the guest sent.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_choices.hpp"
#include "kdcom/guest/kd_guest.h"
#include "kdcom/shm/kd_pdu.hpp"
#include "kdcom/shm/region.hpp"

namespace {

using namespace kdcom;

constexpr std::uint32_t ring_size = 4096, max_message = 1024;

void ring_nobody(void*) {}

// One message from the host, shaped by the input; false if none could be put in the ring (the
// caller then interrupts the guest, whose call would otherwise wait for ever).
bool host_answers(fuzz::choices& in, shm::region& host, std::span<std::uint8_t> memory, std::uint32_t next_sequence) {
    std::vector<std::uint8_t> body(in.byte() % 64);
    for (auto& b : body) b = in.byte();
    const std::uint8_t shape = in.byte() % 8;
    if (shape == 0)  // raw bytes of any kind
        return host.outbound().write(in.byte() % 4, body) == shm::ring_status::ok;
    if (shape == 1) {  // the counter the guest reads scribbled over: never to "empty", or it would wait
        auto& counters = reinterpret_cast<kdcom_shm_header*>(memory.data())->rings[KDCOM_SHM_RING_HOST_TO_GUEST];
        const std::uint32_t tail = std::atomic_ref<std::uint32_t>(counters.tail).load();
        std::uint32_t head = in.u16();
        if (head == tail) head += 8;
        std::atomic_ref<std::uint32_t>(counters.head).store(head);
        return true;
    }
    shm::kd_pdu pdu;
    pdu.operation = static_cast<std::uint16_t>(shape < 5 ? KDCOM_SHM_PDU_SENT : KDCOM_SHM_PDU_RECEIVED);
    if (in.byte() % 4 == 0) pdu.operation = static_cast<std::uint16_t>(1 + in.byte() % 5);
    pdu.packet_type = static_cast<std::uint16_t>(in.byte() % 12);
    pdu.sequence = in.byte() % 8 == 0 ? in.u16() : next_sequence;
    pdu.status = in.byte() % 3;
    if (in.byte() % 2) pdu.status |= KDCOM_SHM_SENT_CARRIES_PACKET;
    const std::size_t split = body.empty() ? 0 : in.byte() % (body.size() + 1);
    pdu.header = std::span<const std::uint8_t>(body).first(split);
    pdu.data = std::span<const std::uint8_t>(body).subspan(split);
    std::vector<std::uint8_t> message(max_message);
    std::error_code ec;
    const std::size_t n = shm::encode_kd_pdu(pdu, message, ec);
    return !ec && host.outbound().write(KDCOM_SHM_KD_PDU, std::span(message).first(n)) == shm::ring_status::ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::choices in(data, size);
    const shm::region_parameters p{ring_size, max_message, 1};
    std::vector<std::uint64_t> pages(KDCOM_SHM_REGION_SIZE(ring_size) / 8);
    const std::span<std::uint8_t> memory(reinterpret_cast<std::uint8_t*>(pages.data()), pages.size() * 8);
    if (shm::region::initialise(memory, p)) __builtin_trap();
    // A header the guest must check (its sizes and identity; not the ring counters, which the
    // host's answers below scribble over).
    if (in.byte() % 16 == 0) memory[in.byte() % offsetof(kdcom_shm_header, rings)] = in.byte();
    shm::region host(memory, p, shm::side::host);

    const kdcom_guest_channel channel{memory.data(), memory.size(), nullptr, ring_nobody, nullptr, nullptr, nullptr, 0, 0};
    kdcom_guest* g = kdcom_guest_open(&channel, nullptr, 0);
    if (!g) return 0;
    std::uint32_t calls_seen = 0;
    std::vector<std::uint8_t> drained(max_message);
    for (int step = 0; step < 32 && in.more(); ++step) {
        if (in.byte() % 8 == 0 || !host_answers(in, host, memory, calls_seen + 1))
            kdcom_guest_interrupt(g);  // from here on every call fails at once
        if (in.byte() % 2) {
            std::vector<std::uint8_t> header(in.byte() % 32), body(in.byte() % 64);
            const int r = kdcom_guest_send_packet(g, static_cast<std::uint16_t>(in.byte() % 12), header.data(),
                                                  static_cast<std::uint16_t>(header.size()), body.data(),
                                                  static_cast<std::uint16_t>(body.size()));
            if (r != KDCOM_GUEST_SENT && r != KDCOM_GUEST_GAVE_UP && r != KDCOM_GUEST_ERROR) __builtin_trap();
        } else {
            std::vector<std::uint8_t> header(in.byte() % 48), body(in.byte() % 48);
            std::uint16_t header_length = 0xFFFF, data_length = 0xFFFF;
            const auto type = static_cast<std::uint16_t>(in.byte() % 12);
            const int r = kdcom_guest_receive_packet(g, type, header.data(),
                                                     static_cast<std::uint16_t>(header.size()), &header_length, body.data(),
                                                     static_cast<std::uint16_t>(body.size()), &data_length, 0);
            if (r == KDCOM_GUEST_RECEIVED && (header_length > header.size() || data_length > body.size()))
                __builtin_trap();
            if (r < KDCOM_GUEST_ERROR || r > KDCOM_GUEST_RESEND) __builtin_trap();
        }
        // The host takes what the guest sent.
        std::uint16_t kind = 0;
        std::size_t length = 0;
        while (host.inbound().read(drained, kind, length) == shm::ring_status::ok) ++calls_seen;
    }
    kdcom_guest_detach(g);
    return 0;
}
