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
 * write; between processes, an eventfd each). A producer rings the consumer's doorbell after
 * publishing a message. A producer that finds no room sets producer_waiting, re-reads tail, and
 * sleeps on its own doorbell; a consumer that finds producer_waiting set after advancing tail
 * rings the producer's doorbell. (Both sides fence between their store and their load, so one of
 * them always sees the other.)
 */
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
    uint32_t pad1[15];
};

struct kdcom_shm_header {
    uint32_t magic;         /* KDCOM_SHM_MAGIC */
    uint32_t version;       /* KDCOM_SHM_VERSION */
    uint32_t header_size;   /* sizeof(struct kdcom_shm_header) */
    uint32_t ring_size;     /* bytes of data per ring: a power of two, at least 4096 */
    uint32_t max_message;   /* largest payload either side may send */
    uint32_t generation;    /* bumped by the guest each time it (re)initialises the region */
    uint32_t reserved[10];
    struct kdcom_shm_ring_counters rings[2];
};

struct kdcom_shm_message_header {
    uint32_t length;   /* payload bytes that follow */
    uint16_t kind;     /* KDCOM_SHM_* */
    uint16_t reserved; /* 0 */
};

#define KDCOM_SHM_ALIGN 8u
#define KDCOM_SHM_REGION_SIZE(ring_size) (sizeof(struct kdcom_shm_header) + 2u * (ring_size))

#endif /* KDCOM_SHM_LAYOUT_H */
