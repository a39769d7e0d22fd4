/* The guest shared-memory region: a versioned layout that a guest kernel driver written in C and
 * the host (kdcom) both include. C89-compatible; every field is a fixed-size little-endian
 * integer at a fixed offset.
 *
 *   region:  [kdcom_shm_header][ring 0 data: guest -> host][ring 1 data: host -> guest]
 *
 * Each ring is single-producer, single-consumer. Its producer writes a message at `head`
 * (wrapping), then publishes it by storing the new head (release); its consumer reads `head`
 * (acquire), copies the message out, then stores the new `tail` (release). head and tail are
 * free-running byte counts; head - tail is what the ring holds. The two counters sit on separate
 * cache lines, so producer and consumer never write the same line.
 *
 * A message is a kdcom_shm_message_header followed by `length` payload bytes, padded so the next
 * header starts at a multiple of 8. The payload may wrap around the end of the ring; a header
 * never does (it is 8 bytes and always starts at a multiple of 8, and ring_size is a multiple of 8).
 *
 * Doorbells: each side has one (in a VMM, the guest's is an interrupt and the host's a trapping
 * write; between processes, an eventfd each). Signals are only sent to a side that sleeps:
 * - a consumer about to sleep sets consumer_sleeping, looks at head again, and sleeps only if the
 *   ring is still empty; a producer rings the consumer's doorbell after publishing a message if it
 *   then sees consumer_sleeping set;
 * - a producer that finds no room sets producer_waiting, looks at tail again, and sleeps only if
 *   there is still no room; a consumer rings the producer's doorbell after advancing tail if it
 *   then sees producer_waiting set.
 * Each side stores its mark or counter and then loads the other's with sequentially consistent
 * operations, so at least one of the two sees the other: no wake-up is lost. A side may also poll
 * the ring for a while before it sleeps, which costs the other side no signals at all.
 */
/* Generations: a region that outlives the guest's boots (QEMU's ivshmem device keeps its memory
 * for the VM's life) is reset in band. The guest, when it starts, cannot trust anything the rings
 * hold, so before using them it asks for a new generation: it stores
 * requested_generation = (the larger of generation and requested_generation) + 1 (never 0) and
 * signals the host. The host ends whatever it was serving, writes a fresh header (its own sizes,
 * zeroed counters), stores generation = requested_generation last, and serves that generation.
 * The guest waits until generation equals the number it asked for, then reads the header and uses
 * the rings. The host never takes sizes from the guest; a guest that scribbles over the region is
 * dropped and the next request served. A region created for each guest (shm://) starts at
 * generation 0 and needs no request.
 *
 * ivshmem: the host is a peer of its own on the ivshmem server, with the id in host_peer; the
 * guest signals it by writing (host_peer << 16) | 0 to the device's Doorbell register. */
#ifndef KDCOM_SHM_LAYOUT_H
#define KDCOM_SHM_LAYOUT_H

#include <stdint.h>

#define KDCOM_SHM_MAGIC 0x4D43444Bu /* "KDCM" little-endian */
#define KDCOM_SHM_VERSION 1u
#define KDCOM_SHM_RING_GUEST_TO_HOST 0
#define KDCOM_SHM_RING_HOST_TO_GUEST 1

/* Message kinds. */
#define KDCOM_SHM_KDCOM_BYTES 1u /* raw KDCOM byte stream chunk */
#define KDCOM_SHM_KD_PDU 2u /* KdSendPacket/KdReceivePacket arguments or results (see the bridge) */

struct kdcom_shm_ring_counters {
    uint32_t head;      /* written by the producer only */
    uint32_t producer_waiting; /* producer only: 1 while it waits for room (ring its doorbell) */
    uint32_t pad0[14];  /* one 64-byte cache line each */
    uint32_t tail;      /* written by the consumer only */
    uint32_t consumer_sleeping; /* consumer only: 1 while it sleeps on its doorbell */
    uint32_t pad1[14];
};

struct kdcom_shm_header {
    uint32_t magic;         /* KDCOM_SHM_MAGIC */
    uint32_t version;       /* KDCOM_SHM_VERSION */
    uint32_t header_size;   /* sizeof(struct kdcom_shm_header) */
    uint32_t ring_size;     /* bytes of data per ring: a power of two, at least 4096 */
    uint32_t max_message;   /* largest payload either side may send */
    uint32_t generation;    /* the host: the generation the rings are set up for (below) */
    uint32_t requested_generation; /* the guest: the generation it asks for (below) */
    uint32_t host_peer;     /* ivshmem: the host's peer id, for the guest's Doorbell register */
    uint32_t reserved[8];
    struct kdcom_shm_ring_counters rings[2];
};

struct kdcom_shm_message_header {
    uint32_t length;   /* payload bytes that follow */
    uint16_t kind;     /* KDCOM_SHM_* */
    uint16_t reserved; /* 0 */
};

/* KD PDUs (message kind KDCOM_SHM_KD_PDU): one KdSendPacket or KdReceivePacket call of the guest
 * per message, and one answer from the host per call. A PDU is a struct kdcom_shm_kd_pdu followed
 * by header_length bytes of message header, then data_length bytes of message data (KdSendPacket's
 * MessageHeader and MessageData buffers); the message length is exactly the sum of the three.
 *
 *   KDCOM_SHM_PDU_SEND      guest -> host  packet_type, header and data to send; status holds flags
 *                                          (KDCOM_SHM_SEND_TAKES_PACKET, others 0).
 *   KDCOM_SHM_PDU_SENT      host -> guest  the send is done: status KDCOM_SHM_SEND_*, with
 *                                          KDCOM_SHM_SENT_CARRIES_PACKET set when a packet from
 *                                          the debugger comes along (below).
 *   KDCOM_SHM_PDU_RECEIVE   guest -> host  wait for a packet of packet_type; header_length and
 *                                          data_length are the sizes of the guest's buffers (no
 *                                          bytes follow); status is the timeout in milliseconds.
 *                                          packet_type 8 (KD_POLL_BREAKIN) asks whether a break-in
 *                                          is pending and is answered at once.
 *   KDCOM_SHM_PDU_RECEIVED  host -> guest  status KDCOM_SHM_RECEIVE_*; with _OK, packet_type, header
 *                                          and data of the packet (at most the buffer sizes asked).
 *
 * `sequence` is chosen by the guest for each call and copied into its answer.
 *
 * Carrying a packet with SENT (optional, saves a crossing per request while the kernel is stopped):
 * a guest that sets KDCOM_SHM_SEND_TAKES_PACKET in a SEND's status may get, in the SENT answer,
 * the debugger's next packet, which the host then no longer holds: status has
 * KDCOM_SHM_SENT_CARRIES_PACKET set, packet_type is the carried packet's type, header_length is 0
 * and the data is the whole packet body. The guest keeps it and gives it to its next
 * KdReceivePacket exactly as the host would have: to a RECEIVE of that type (RESEND if it does not
 * fit the buffers), dropped by a RECEIVE of another type (which then goes to the host); a poll for
 * a break-in leaves it alone. A guest that never sets the flag never sees a carried packet. */
#define KDCOM_SHM_PDU_SEND 1u
#define KDCOM_SHM_PDU_SENT 2u
#define KDCOM_SHM_PDU_RECEIVE 3u
#define KDCOM_SHM_PDU_RECEIVED 4u

#define KDCOM_SHM_SEND_ACKNOWLEDGED 0u /* the debugger acknowledged the packet */
#define KDCOM_SHM_SEND_GAVE_UP 1u      /* a droppable packet whose retries ran out (no debugger) */
#define KDCOM_SHM_SEND_TAKES_PACKET 1u   /* SEND flag: the guest can keep a packet carried by SENT */
#define KDCOM_SHM_SENT_CARRIES_PACKET 0x100u /* SENT flag: the debugger's next packet comes along */
#define KDCOM_SHM_SENT_RESULT_MASK 0xFFu /* SENT: the KDCOM_SHM_SEND_* result without flags */

#define KDCOM_SHM_RECEIVE_OK 0u      /* KDP_PACKET_RECEIVED (for a break-in poll: one is pending) */
#define KDCOM_SHM_RECEIVE_TIMEOUT 1u /* KDP_PACKET_TIMEOUT (for a break-in poll: none pending) */
#define KDCOM_SHM_RECEIVE_RESEND 2u  /* KDP_PACKET_RESEND: the link was reset; send again */

struct kdcom_shm_kd_pdu {
    uint16_t operation;     /* KDCOM_SHM_PDU_* */
    uint16_t packet_type;   /* KD packet type */
    uint32_t sequence;      /* the guest's call number; answers repeat it */
    uint32_t status;        /* see above */
    uint16_t header_length; /* bytes of message header that follow (RECEIVE: buffer size) */
    uint16_t data_length;   /* bytes of message data after them (RECEIVE: buffer size) */
};

#define KDCOM_SHM_ALIGN 8u
#define KDCOM_SHM_REGION_SIZE(ring_size) (sizeof(struct kdcom_shm_header) + 2u * (ring_size))

#endif /* KDCOM_SHM_LAYOUT_H */
