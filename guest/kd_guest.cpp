// The blocking guest: one KD PDU out, one answer back, per call. Waits poll the rings briefly and
// then sleep on the guest's doorbell (and the rendezvous socket, which says when the host is gone).
#include "kdcom/guest/kd_guest.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kdcom/net/shm_attachment.hpp"
#include "kdcom/shm/kd_pdu.hpp"
#include "kdcom/wire/packet_type.hpp"

using namespace kdcom;

struct kdcom_guest {
    net::shm_detail::unique_fd socket;
    net::shm_detail::unique_fd interrupt;  // an eventfd: readable once kdcom_guest_interrupt() ran
    std::atomic<bool> interrupted{false};
    static_assert(std::atomic<bool>::is_always_lock_free, "kdcom_guest_interrupt() stores it from a signal handler");
    net::shm_attachment attachment;
    std::optional<shm::region> region;
    std::vector<std::uint8_t> outgoing, incoming;  // one message each way
    // The debugger's next packet, when the host carried it with SENT (layout.h): the next
    // KdReceivePacket takes it without a crossing.
    bool carried = false;
    std::uint16_t carried_type = 0;
    std::vector<std::uint8_t> carried_body;
    std::uint64_t receives_without_crossing = 0;
    std::uint64_t carried_dropped = 0;
    std::uint32_t sequence = 0;
    std::uint64_t doorbells = 0;
    std::string error;
};

namespace {

// How long a wait looks at the ring before it sleeps on the doorbell: an answer that comes this
// quickly costs the host no signal (it sees this side awake), and this side no wake-up, which
// takes tens of microseconds on a virtual machine. A SEND's answer waits for the debugger's
// acknowledgement, a socket round trip or more, so the window is as long as the host's (KVM's
// halt polling); kdcom.dll spins on the UART the whole time it waits anyway.
constexpr auto poll_before_sleep = std::chrono::microseconds(200);

int fail(kdcom_guest& g, std::string why) {
    g.error = std::move(why);
    return KDCOM_GUEST_ERROR;
}

void ring_host(kdcom_guest& g) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(g.attachment.host_doorbell.get(), &one, sizeof one);
    ++g.doorbells;
}

// Sleeps until the guest's doorbell rings: 0, or KDCOM_GUEST_ERROR if the host is gone or the
// wait was interrupted.
int sleep_on_doorbell(kdcom_guest& g) {
    pollfd fds[3] = {{g.attachment.guest_doorbell.get(), POLLIN, 0}, {g.socket.get(), POLLIN, 0}, {g.interrupt.get(), POLLIN, 0}};
    for (;;) {
        const int n = ::poll(fds, 3, -1);
        if (n < 0 && errno == EINTR) continue;
        if (g.interrupted || fds[2].revents) return fail(g, "interrupted");
        // The host writes on the socket only its hello: anything else there means it closed.
        if (n < 0 || fds[1].revents) return fail(g, "the host is gone");
        std::uint64_t count;
        [[maybe_unused]] const auto r = ::read(g.attachment.guest_doorbell.get(), &count, sizeof count);
        return 0;
    }
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
    auto awake_since = std::chrono::steady_clock::now();
    for (;;) {
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
        if (std::chrono::steady_clock::now() - awake_since < poll_before_sleep) continue;
        in.mark_sleeping(true);
        if (!in.maybe_readable()) {
            const int slept = sleep_on_doorbell(g);
            in.mark_sleeping(false);
            if (slept != 0) return KDCOM_GUEST_ERROR;
        } else {
            in.mark_sleeping(false);
        }
        awake_since = std::chrono::steady_clock::now();
    }
}

int call(kdcom_guest& g, shm::kd_pdu pdu, shm::kd_pdu& answer) {
    if (g.interrupted) return fail(g, "interrupted");
    pdu.sequence = ++g.sequence;
    std::error_code ec;
    const std::size_t n = shm::encode_kd_pdu(pdu, g.outgoing, ec);
    if (ec) return fail(g, "the packet does not fit the mailbox: " + ec.message());
    if (put(g, std::span(g.outgoing).first(n)) != 0) return KDCOM_GUEST_ERROR;
    return take_answer(g, pdu.sequence, answer);
}

void set_error(char* error, std::size_t size, const std::string& text) {
    if (!error || size == 0) return;
    const std::size_t n = std::min(size - 1, text.size());
    std::memcpy(error, text.data(), n);
    error[n] = '\0';
}

}  // namespace

extern "C" {

kdcom_guest* kdcom_guest_attach(const char* name, char* error, size_t error_size) {
    auto g = std::make_unique<kdcom_guest>();
    const std::string path = net::shm_rendezvous_path(name ? name : "");
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) {
        set_error(error, error_size, "rendezvous path too long: " + path);
        return nullptr;
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    g->interrupt.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!g->interrupt) {
        set_error(error, error_size, std::string("cannot make an eventfd: ") + std::strerror(errno));
        return nullptr;
    }
    g->socket.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!g->socket || ::connect(g->socket.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        set_error(error, error_size, "cannot reach the host at " + path + ": " + std::strerror(errno));
        return nullptr;
    }
    if (auto ec = net::receive_shm_attachment(g->socket.get(), true, g->attachment)) {
        set_error(error, error_size, "the host at " + path + " refused the attachment: " + ec.message());
        return nullptr;
    }
    g->region.emplace(g->attachment.memory.bytes(), g->attachment.parameters, shm::side::guest);
    g->outgoing.resize(g->attachment.parameters.max_message);
    g->incoming.resize(g->attachment.parameters.max_message);
    return g.release();
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
        g->carried_body.assign(answer.header.begin(), answer.header.end());
        g->carried_body.insert(g->carried_body.end(), answer.data.begin(), answer.data.end());
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
    const std::span<const std::uint8_t> body = g.carried_body;
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

const char* kdcom_guest_error(const kdcom_guest* g) { return g->error.c_str(); }

uint64_t kdcom_guest_doorbells(const kdcom_guest* g) { return g->doorbells; }

uint64_t kdcom_guest_receives_without_crossing(const kdcom_guest* g) { return g->receives_without_crossing; }

uint64_t kdcom_guest_carried_packets_dropped(const kdcom_guest* g) { return g->carried_dropped; }

void kdcom_guest_interrupt(kdcom_guest* g) {
    // Both async-signal-safe: a lock-free store and write(2).
    g->interrupted = true;
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(g->interrupt.get(), &one, sizeof one);
}

void kdcom_guest_detach(kdcom_guest* g) { delete g; }

}  // extern "C"
