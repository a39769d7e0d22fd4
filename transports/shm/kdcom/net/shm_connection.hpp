// One connected guest shared-memory channel (layout.h): the region, mapped, and a doorbell each way.
// It is a byte_stream (KDCOM bytes carried as KDCOM_SHM_KDCOM_BYTES messages, so a Session runs
// KDCOM end to end over shared memory) and also carries whole messages of any kind (the KD PDUs of
// the VMM bridge).
//
// The host side treats the region as hostile (see kdcom/shm/ring.hpp): a corrupt ring fails the
// pending operations with errc::shm_corrupt_ring; a peer that leaves no room to write for longer
// than the stall timeout fails the write with errc::peer_stalled; a peer process that exits (its
// end of the rendezvous socket closes) fails them with asio::error::eof. None of these can block
// the io_context: every wait is an asynchronous wait on a descriptor or a timer.
//
// Threads and lifetimes: as for every byte_stream (byte_stream.hpp). At most one receive (byte or
// message) and one send (byte or message) are outstanding at a time. Handlers never run inside the
// call that starts an operation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <system_error>

#include "kdcom/net/byte_stream.hpp"
#include "kdcom/shm/region.hpp"

namespace kdcom::net {

class shm_connection : public byte_stream {
public:
    using message_handler = std::function<void(std::error_code, std::uint16_t kind, std::size_t length)>;

    struct statistics {
        std::uint64_t messages_received = 0;
        std::uint64_t messages_sent = 0;
        std::uint64_t doorbells_rung = 0;      // signals sent to the peer
        std::uint64_t doorbells_answered = 0;  // wake-ups by the peer's signal
        std::uint64_t waits_for_room = 0;      // times a send found the ring full
    };

    // Receives the next message, whatever its kind, into `buffer` (at least max_message() bytes
    // long): the handler gets the kind and the payload length. Do not mix with async_read_some
    // while a byte read has a message partly handed out.
    virtual void async_receive_message(std::span<std::uint8_t> buffer, message_handler handler) = 0;
    // Sends one message of `kind` (payload at most max_message() bytes, else std::errc::message_size).
    virtual void async_send_message(std::uint16_t kind, std::span<const std::uint8_t> payload, io_handler handler) = 0;

    // Says that the peer has made a call and sends nothing more until this side's next message (a
    // guest inside KdSendPacket or KdReceivePacket, waiting for the bridge's answer). Until then
    // the connection does not poll the ring for the peer's messages: it marks itself asleep at
    // once, so a message the peer sends anyway rings the doorbell and is still received. The next
    // message this side sends ends it, and polling resumes with it.
    virtual void peer_awaits_answer() = 0;

    virtual const shm::region_parameters& parameters() const = 0;
    std::uint32_t max_message() const { return parameters().max_message; }
    virtual statistics stats() const = 0;
};

}  // namespace kdcom::net
