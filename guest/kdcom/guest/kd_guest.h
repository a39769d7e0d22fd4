/* The guest side of the VMM bridge: KdSendPacket and KdReceivePacket over the shared-memory
 * mailbox (kdcom/shm/layout.h), at most one KD PDU and one doorbell signal per call, whatever the
 * debugger link does (a KdReceivePacket served with the packet the host carried with the previous
 * send's answer costs none). For simulators, and the reference for anyone writing the real guest driver:
 * between processes it attaches to a shm:// host; a driver replaces the attachment with its VM's
 * shared pages and trap and keeps the rest.
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

/* Attaches to the host that created shm://NAME. NULL on failure, with the reason in `error`
 * (`error_size` bytes, may be 0). */
kdcom_guest* kdcom_guest_attach(const char* name, char* error, size_t error_size);

/* KdSendPacket: returns when the host says the send is done. */
int kdcom_guest_send_packet(kdcom_guest* guest, uint16_t packet_type, const void* header, uint16_t header_length,
                            const void* data, uint16_t data_length);

/* KdReceivePacket: waits up to `timeout_ms` for a packet of `packet_type` (KD_POLL_BREAKIN, 8:
 * answered at once). On KDCOM_GUEST_RECEIVED the message header and data are copied into the
 * buffers and their lengths stored. */
int kdcom_guest_receive_packet(kdcom_guest* guest, uint16_t packet_type, void* header, uint16_t header_capacity,
                               uint16_t* header_length, void* data, uint16_t data_capacity, uint16_t* data_length,
                               uint32_t timeout_ms);

/* Why the last call returned KDCOM_GUEST_ERROR. */
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
