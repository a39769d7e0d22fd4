// The blocking guest: one KD PDU out, one answer back, per call, over a kdcom_guest_channel. Waits
// poll the rings briefly and then sleep through the channel (or keep polling, if it cannot sleep).
// Nothing here allocates or throws once the guest is open: a driver's calls run this code as is.
#include "kdcom/guest/kd_guest.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kdcom/shm/generation.hpp"
#include "kdcom/shm/kd_pdu.hpp"
#include "kdcom/wire/packet_type.hpp"
#include "error_text.hpp"

using namespace kdcom;
using kdcom::guest_detail::set_error;

struct kdcom_guest {
    kdcom_guest_channel channel{};
    std::atomic<bool> interrupted{false};
    static_assert(std::atomic<bool>::is_always_lock_free, "kdcom_guest_interrupt() stores it from a signal handler");
    std::optional<shm::region> region;
    std::vector<std::uint8_t> outgoing, incoming;  // one message each way, sized when opened
    // The debugger's next packet, when the host carried it with SENT (layout.h): the next
    // KdReceivePacket takes it without a crossing.
    bool carried = false;
    std::uint16_t carried_type = 0;
    std::size_t carried_length = 0;
    std::vector<std::uint8_t> carried_body;  // max_message bytes, sized when opened
    std::uint64_t receives_without_crossing = 0;
    std::uint64_t carried_dropped = 0;
    std::uint32_t sequence = 0;
    std::uint64_t doorbells = 0;
    const char* error = "";

    ~kdcom_guest() {
        if (channel.release) channel.release(channel.context);
    }
};

namespace {

// How long a wait looks at the ring before it sleeps: an answer that comes this quickly costs the
// host no signal (it sees this side awake), and this side no wake-up, which takes tens of
// microseconds on a virtual machine. A SEND's answer waits for the debugger's acknowledgement, a
// socket round trip or more, so the window is as long as the host's (KVM's halt polling);
// kdcom.dll spins on the UART the whole time it waits anyway.
constexpr std::uint64_t poll_before_sleep_ns = 200'000;

std::uint64_t monotonic_ns() {
    timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<std::uint64_t>(t.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(t.tv_nsec);
}

int fail(kdcom_guest& g, const char* why) {
    g.error = why;
    return KDCOM_GUEST_ERROR;
}

void ring_host(kdcom_guest& g) {
    g.channel.ring_host(g.channel.context);
    ++g.doorbells;
}

// Sleeps until the host signals: 0, or KDCOM_GUEST_ERROR if it never will. A channel that cannot
// sleep returns at once (its caller keeps polling).
int sleep_on_doorbell(kdcom_guest& g) {
    if (g.interrupted) return fail(g, "interrupted");
    if (!g.channel.sleep) return 0;
    const char* why = "the host is gone";
    if (g.channel.sleep(g.channel.context, &why) != 0) return fail(g, g.interrupted ? "interrupted" : why);
    return g.interrupted ? fail(g, "interrupted") : 0;
}

// Writes one message to the host, waiting for room if the ring is full.
int put(kdcom_guest& g, std::span<const std::uint8_t> message) {
    auto& out = g.region->outbound();
    for (;;) {
        auto status = out.write(KDCOM_SHM_KD_PDU, message);
        if (status == shm::ring_status::full) {
            out.mark_waiting(true);
            status = out.write(KDCOM_SHM_KD_PDU, message);
            if (status == shm::ring_status::full) {
                if (sleep_on_doorbell(g) != 0) return KDCOM_GUEST_ERROR;
                continue;
            }
            out.mark_waiting(false);
        }
        if (status != shm::ring_status::ok) return fail(g, "the mailbox is broken (ring to the host)");
        if (out.consumer_sleeping()) ring_host(g);
        return 0;
    }
}

// Waits for the host's answer to call `sequence` and decodes it (views into g.incoming).
int take_answer(kdcom_guest& g, std::uint32_t sequence, shm::kd_pdu& answer) {
    auto& in = g.region->inbound();
    auto awake_since = monotonic_ns();
    for (std::uint32_t looks = 1;; ++looks) {
        std::uint16_t kind = 0;
        std::size_t length = 0;
        const auto status = in.read(g.incoming, kind, length);
        if (status == shm::ring_status::ok) {
            if (in.producer_waiting()) ring_host(g);
            if (kind != KDCOM_SHM_KD_PDU || shm::decode_kd_pdu(std::span(g.incoming).first(length), answer) ||
                answer.sequence != sequence)
                return fail(g, "the host answered out of turn");
            return 0;
        }
        if (status != shm::ring_status::empty) return fail(g, "the mailbox is broken (ring from the host)");
        if (g.interrupted) return fail(g, "interrupted");
        // A look costs far less than a clock read on a virtual machine: read it every 16th.
        if (!g.channel.sleep || looks % 16 != 0 || monotonic_ns() - awake_since < poll_before_sleep_ns) continue;
        in.mark_sleeping(true);
        if (!in.maybe_readable()) {
            const int slept = sleep_on_doorbell(g);
            in.mark_sleeping(false);
            if (slept != 0) return KDCOM_GUEST_ERROR;
        } else {
            in.mark_sleeping(false);
        }
        awake_since = monotonic_ns();
    }
}

int call(kdcom_guest& g, shm::kd_pdu pdu, shm::kd_pdu& answer) {
    if (g.interrupted) return fail(g, "interrupted");
    pdu.sequence = ++g.sequence;
    std::error_code ec;
    const std::size_t n = shm::encode_kd_pdu(pdu, g.outgoing, ec);
    if (ec) return fail(g, "the packet does not fit the mailbox");
    if (put(g, std::span(g.outgoing).first(n)) != 0) return KDCOM_GUEST_ERROR;
    return take_answer(g, pdu.sequence, answer);
}


// A region that outlives the guest's boots: ask for a new generation and wait for it (layout.h).
bool announce(kdcom_guest& g, std::span<std::uint8_t> memory, std::string& why) {
    if (memory.size() < sizeof(kdcom_shm_header)) {
        why = "the shared memory is smaller than a region header";
        return false;
    }
    const std::uint32_t wanted = shm::generation::request(memory);
    ring_host(g);
    const std::uint64_t deadline = monotonic_ns() + std::uint64_t{g.channel.announce_timeout_ms} * 1'000'000u;
    while (!shm::generation::served(memory, wanted)) {
        if (g.interrupted) {
            why = "interrupted";
            return false;
        }
        if (monotonic_ns() > deadline) {
            why = "the host did not set up generation " + std::to_string(wanted) + " within " +
                  std::to_string(g.channel.announce_timeout_ms) + " ms (is kdcom-bridge serving this VM?)";
            return false;
        }
        const timespec pause{0, 100'000};
        ::nanosleep(&pause, nullptr);
    }
    return true;
}

}  // namespace

extern "C" {

kdcom_guest* kdcom_guest_open(const kdcom_guest_channel* channel, char* error, size_t error_size) {
    if (!channel) {
        set_error(error, error_size, "no channel");
        return nullptr;
    }
    auto g = std::make_unique<kdcom_guest>();
    g->channel = *channel;  // from here on, the guest releases the channel
    const std::span<std::uint8_t> memory(static_cast<std::uint8_t*>(channel->memory), channel->memory_size);
    std::string why;
    if (!channel->ring_host) why = "the channel has no way to signal the host";
    else if (channel->announce && !announce(*g, memory, why)) {
    } else {
        shm::region_parameters parameters;
        if (auto ec = shm::region::read_parameters(memory, parameters)) why = "the shared memory holds no usable region: " + ec.message();
        else {
            g->region.emplace(memory, parameters, shm::side::guest);
            g->outgoing.resize(parameters.max_message);
            g->incoming.resize(parameters.max_message);
            g->carried_body.resize(parameters.max_message);
            return g.release();
        }
    }
    set_error(error, error_size, why);
    return nullptr;
}

int kdcom_guest_send_packet(kdcom_guest* g, uint16_t packet_type, const void* header, uint16_t header_length,
                            const void* data, uint16_t data_length) {
    shm::kd_pdu pdu;
    pdu.operation = KDCOM_SHM_PDU_SEND;
    pdu.packet_type = packet_type;
    pdu.header = {static_cast<const std::uint8_t*>(header), header ? header_length : std::size_t{0}};
    pdu.data = {static_cast<const std::uint8_t*>(data), data ? data_length : std::size_t{0}};
    if (!g->carried) pdu.status = KDCOM_SHM_SEND_TAKES_PACKET;  // room to keep one
    shm::kd_pdu answer;
    if (call(*g, pdu, answer) != 0) return KDCOM_GUEST_ERROR;
    if (answer.operation != KDCOM_SHM_PDU_SENT) return fail(*g, "the host answered a send with something else");
    if (answer.status & KDCOM_SHM_SENT_CARRIES_PACKET) {
        if (g->carried) return fail(*g, "the host carried a packet the guest had no room for");
        g->carried = true;
        g->carried_type = answer.packet_type;
        // Header and data together fit one message, the size of carried_body.
        std::copy(answer.header.begin(), answer.header.end(), g->carried_body.begin());
        std::copy(answer.data.begin(), answer.data.end(), g->carried_body.begin() + static_cast<std::ptrdiff_t>(answer.header.size()));
        g->carried_length = answer.header.size() + answer.data.size();
    }
    return (answer.status & KDCOM_SHM_SENT_RESULT_MASK) == KDCOM_SHM_SEND_ACKNOWLEDGED ? KDCOM_GUEST_SENT
                                                                                       : KDCOM_GUEST_GAVE_UP;
}

namespace {

// Hands the received packet's body to KdReceivePacket's buffers: the message header first, the
// rest as data. The caller has checked that it fits.
void split_into(std::span<const std::uint8_t> header_bytes, std::span<const std::uint8_t> data_bytes, void* header,
                uint16_t* header_length, void* data, uint16_t* data_length) {
    if (!header_bytes.empty()) std::memcpy(header, header_bytes.data(), header_bytes.size());
    if (!data_bytes.empty()) std::memcpy(data, data_bytes.data(), data_bytes.size());
    if (header_length) *header_length = static_cast<uint16_t>(header_bytes.size());
    if (data_length) *data_length = static_cast<uint16_t>(data_bytes.size());
}

// KdReceivePacket served from the packet the host carried, exactly as the host would serve it:
// true with `result` set if the call is done; false if it must go to the host (no packet kept, or
// one of another type, which is dropped as kdcom.dll drops what the kernel is not waiting for).
bool receive_carried(kdcom_guest& g, uint16_t packet_type, void* header, uint16_t header_capacity,
                     uint16_t* header_length, void* data, uint16_t data_capacity, uint16_t* data_length, int& result) {
    if (!g.carried || packet_type == static_cast<uint16_t>(wire::packet_type::poll_breakin)) return false;
    g.carried = false;
    if (g.carried_type != packet_type) {
        ++g.carried_dropped;
        return false;
    }
    ++g.receives_without_crossing;
    const auto body = std::span<const std::uint8_t>(g.carried_body).first(g.carried_length);
    if (body.size() > std::size_t{header_capacity} + data_capacity) {
        result = KDCOM_GUEST_RESEND;  // never cut a packet to fit
        return true;
    }
    const std::size_t in_header = std::min<std::size_t>(header_capacity, body.size());
    split_into(body.first(in_header), body.subspan(in_header), header, header_length, data, data_length);
    result = KDCOM_GUEST_RECEIVED;
    return true;
}

}  // namespace

int kdcom_guest_receive_packet(kdcom_guest* g, uint16_t packet_type, void* header, uint16_t header_capacity,
                               uint16_t* header_length, void* data, uint16_t data_capacity, uint16_t* data_length,
                               uint32_t timeout_ms) {
    header_capacity = header ? header_capacity : 0;
    data_capacity = data ? data_capacity : 0;
    if (int result = 0; receive_carried(*g, packet_type, header, header_capacity, header_length, data, data_capacity,
                                        data_length, result))
        return result;
    shm::kd_pdu pdu;
    pdu.operation = KDCOM_SHM_PDU_RECEIVE;
    pdu.packet_type = packet_type;
    pdu.status = timeout_ms;
    pdu.header_capacity = header_capacity;
    pdu.data_capacity = data_capacity;
    shm::kd_pdu answer;
    if (call(*g, pdu, answer) != 0) return KDCOM_GUEST_ERROR;
    if (answer.operation != KDCOM_SHM_PDU_RECEIVED) return fail(*g, "the host answered a receive with something else");
    if (answer.status != KDCOM_SHM_RECEIVE_OK) return answer.status == KDCOM_SHM_RECEIVE_TIMEOUT ? KDCOM_GUEST_TIMEOUT
                                                                                                   : KDCOM_GUEST_RESEND;
    // The host never sends more than the buffers hold; check anyway, it is the guest's memory.
    if (answer.header.size() > pdu.header_capacity || answer.data.size() > pdu.data_capacity)
        return fail(*g, "the host sent more than the buffers hold");
    split_into(answer.header, answer.data, header, header_length, data, data_length);
    return KDCOM_GUEST_RECEIVED;
}

const char* kdcom_guest_error(const kdcom_guest* g) { return g->error; }

uint64_t kdcom_guest_doorbells(const kdcom_guest* g) { return g->doorbells; }

uint64_t kdcom_guest_receives_without_crossing(const kdcom_guest* g) { return g->receives_without_crossing; }

uint64_t kdcom_guest_carried_packets_dropped(const kdcom_guest* g) { return g->carried_dropped; }

void kdcom_guest_interrupt(kdcom_guest* g) {
    // A lock-free store, and the channel's wake-up (async-signal-safe by its contract).
    g->interrupted = true;
    if (g->channel.interrupt) g->channel.interrupt(g->channel.context);
}

void kdcom_guest_detach(kdcom_guest* g) { delete g; }

}  // extern "C"
