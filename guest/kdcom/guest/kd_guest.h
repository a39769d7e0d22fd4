/* The guest side of the VMM bridge: KdSendPacket and KdReceivePacket over the shared-memory
 * mailbox (kdcom/shm/layout.h), at most one KD PDU and one doorbell signal per call, whatever the
 * debugger link does (a KdReceivePacket served with the packet the host carried with the previous
 * send's answer costs none). For simulators, and the reference for anyone writing the real guest
 * driver: it runs over a channel (below), the region and a signal each way; attachments for a
 * shm:// host and for QEMU's ivshmem device are included, and a driver supplies its own.
 *
 * Blocking, for one caller at a time (the kernel calls KdSendPacket/KdReceivePacket with the
 * debugger lock held). C-callable; the implementation is C++. */
#ifndef KDCOM_GUEST_KD_GUEST_H
#define KDCOM_GUEST_KD_GUEST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kdcom_guest kdcom_guest;

/* kdcom_guest_send_packet results */
#define KDCOM_GUEST_SENT 0    /* the debugger acknowledged the packet */
#define KDCOM_GUEST_GAVE_UP 1 /* a droppable packet (DbgPrint, symbol load, .kdfiles) nobody answered */
/* kdcom_guest_receive_packet results: KdReceivePacket's KDP_PACKET_* */
#define KDCOM_GUEST_RECEIVED 0 /* a packet (for KD_POLL_BREAKIN: a break-in is pending) */
#define KDCOM_GUEST_TIMEOUT 1  /* none in time (for KD_POLL_BREAKIN: none pending) */
#define KDCOM_GUEST_RESEND 2   /* the debugger reset the link: send the state change again */
/* Either: the host is gone or the mailbox broke; kdcom_guest_error() says why. */
#define KDCOM_GUEST_ERROR (-1)

/* What the library needs from whatever connects the guest to the host: the region, mapped, and
 * the signals each way. The library's calls use only these, the ring code and the clock: no
 * sockets, no allocation, no exceptions, so a driver with its own VM's pages and trap can supply
 * them. */
typedef struct kdcom_guest_channel {
    void* memory;        /* the shared region (kdcom/shm/layout.h), 8-byte aligned */
    size_t memory_size;
    void* context;       /* passed to the functions below */
    /* Signals the host (an eventfd write, a doorbell register write). Required. */
    void (*ring_host)(void* context);
    /* Sleeps until the host signals the guest; returns 0, or non-zero with a static reason in
     * `why` when no signal will come (the host is gone, kdcom_guest_interrupt ran). NULL: the
     * guest polls the region and never asks the host for a signal. */
    int (*sleep)(void* context, const char** why);
    /* Wakes a sleep in progress; called by kdcom_guest_interrupt, so it must be async-signal-safe.
     * May be NULL. */
    void (*interrupt)(void* context);
    /* Releases what `context` holds (the mapping, descriptors); called once by kdcom_guest_detach
     * and when kdcom_guest_open fails. May be NULL. */
    void (*release)(void* context);
    /* Non-zero when the region outlives the guest's boots (QEMU's ivshmem): the guest first asks
     * the host for a new generation (layout.h) and waits up to announce_timeout_ms for it. */
    int announce;
    uint32_t announce_timeout_ms;
} kdcom_guest_channel;

/* Opens a guest over `channel` (its release runs on failure too). NULL on failure, with the
 * reason in `error` (`error_size` bytes, may be 0). */
kdcom_guest* kdcom_guest_open(const kdcom_guest_channel* channel, char* error, size_t error_size);

/* Attaches to the host that created shm://NAME (between processes on one machine). */
kdcom_guest* kdcom_guest_attach(const char* name, char* error, size_t error_size);

/* Attaches to the kdcom host behind a QEMU ivshmem-doorbell PCI device from inside a Linux guest
 * (sysfs: the device's resource0, its registers, and resource2, the shared memory). `device`:
 * the device's sysfs folder (/sys/bus/pci/devices/0000:00:04.0), or NULL for the first ivshmem
 * device (vendor 1af4, device 1110). The guest polls; it signals the host through the Doorbell
 * register. Needs root (the resource files) and a mounted sysfs. */
kdcom_guest* kdcom_guest_attach_ivshmem(const char* device, char* error, size_t error_size);

/* KdSendPacket: returns when the host says the send is done. */
int kdcom_guest_send_packet(kdcom_guest* guest, uint16_t packet_type, const void* header, uint16_t header_length,
                            const void* data, uint16_t data_length);

/* KdReceivePacket: waits up to `timeout_ms` for a packet of `packet_type` (KD_POLL_BREAKIN, 8:
 * answered at once). On KDCOM_GUEST_RECEIVED the message header and data are copied into the
 * buffers and their lengths stored. */
int kdcom_guest_receive_packet(kdcom_guest* guest, uint16_t packet_type, void* header, uint16_t header_capacity,
                               uint16_t* header_length, void* data, uint16_t data_capacity, uint16_t* data_length,
                               uint32_t timeout_ms);

/* Why the last call returned KDCOM_GUEST_ERROR (a static string). */
const char* kdcom_guest_error(const kdcom_guest* guest);

/* Doorbell signals this guest sent the host (a VMM: traps). */
uint64_t kdcom_guest_doorbells(const kdcom_guest* guest);

/* KdReceivePacket calls answered with the packet the host carried with the previous send's answer
 * (layout.h), without a crossing: while the kernel is stopped, usually every request after the
 * first. */
uint64_t kdcom_guest_receives_without_crossing(const kdcom_guest* guest);

/* Carried packets of a type the kernel was not waiting for, dropped here as kdcom.dll drops them
 * (the host counts the packets it drops itself; these it never sees). */
uint64_t kdcom_guest_carried_packets_dropped(const kdcom_guest* guest);

/* Ends the wait of the call in progress, if any, and makes it and every later call return
 * KDCOM_GUEST_ERROR ("interrupted"): a kernel stuck sending to a debugger that is gone can then
 * be switched off. Safe from any thread and from a signal handler. */
void kdcom_guest_interrupt(kdcom_guest* guest);

void kdcom_guest_detach(kdcom_guest* guest);

#ifdef __cplusplus
}
#endif

#endif /* KDCOM_GUEST_KD_GUEST_H */
