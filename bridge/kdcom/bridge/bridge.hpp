// The VMM plugin bridge: a guest's KD packets over shared memory on one side, KDCOM in the target
// role on the guest's behalf toward an unmodified debugger on the other: the design of Ken
// Johnson's VMKD for VMware (his "Fast kernel debugging for VMware" series, parts 3 to 5,
// http://www.nynaeve.net/?p=170 to ?p=172, 2007), for any VMM. The guest's replacement KdSendPacket/KdReceivePacket send
// each call as one KD PDU (kdcom/shm/layout.h) and get one answer; acknowledgements,
// retransmissions, resets and resynchronisation stay on the host.
//
// What the guest sees, exactly as from kdcom.dll:
// - SEND completes when the debugger acknowledged the packet, or, for the droppable kinds (debug
//   prints, symbol loads, .kdfiles), when the retries ran out with no debugger (status GAVE_UP);
// - RECEIVE of a packet type completes with the next packet of that type (packets of other types
//   are dropped, as kdcom.dll does), with TIMEOUT when the guest's timeout passes, or with RESEND
//   when the debugger reset the link (the kernel then sends its state change again; a reset while
//   the guest was between calls goes to its next RECEIVE, unless a state change went out since,
//   as kdcom.dll would find the RESET waiting on the line); a RECEIVE of
//   KD_POLL_BREAKIN is answered at once: OK if a break-in is pending, else TIMEOUT;
// - a packet larger than the guest's buffers is answered with RESEND rather than cut.
// A guest that asks for it in its SEND gets the debugger's next packet along with SENT, when one
// is waiting (layout.h): a stopped kernel then costs one crossing per request, not two.
// Fast path: with `read_physical` set, DbgKdReadPhysicalMemoryApi requests are answered by the
// host from guest memory without waking the guest.
//
// The rules live in kdcom/bridge/core.hpp, free of I/O (and tested in virtual time); this class
// runs them on real links with Asio.
//
// Threads: everything runs on the executor of the links given to create(); the bridge's own
// calls must be made there too.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "kdcom/bridge/statistics.hpp"
#include "kdcom/net/byte_stream.hpp"
#include "kdcom/net/session.hpp"

namespace kdcom::bridge {

struct options {
    // Reads guest physical memory for the fast path: fills `out` from `address` and returns how
    // many bytes it could read (0: not readable). Unset: every request goes to the guest. Called
    // on the bridge's executor, possibly while guest vCPUs run: it must be safe to call then.
    std::function<std::size_t(std::uint64_t address, std::span<std::uint8_t> out)> read_physical;
    endpoint_config endpoint;           // the target role's configuration (role is set to target)
    // For the debugger side. A request's acknowledgement waits up to 1 ms for the guest's answer
    // to leave with it, so the debugger gets both in one read (docs/benchmarks.md); a request
    // with no answer (continue) is acknowledged 1 ms late, far inside any debugger's timeout.
    net::session_options session{.ack_delay = std::chrono::milliseconds(1)};
    std::size_t inbox_limit = 64;       // packets from the debugger held for the guest at most
};

// What the bridge reports as it happens (for kdcom-bridge's log).
using notice_function = std::function<void(const std::string&)>;

class bridge {
public:
    virtual ~bridge() = default;

    // `guest` yields one shm_connection per guest (a shm:// host link; a stream of any other kind
    // is closed and reported as a notice); `debugger` yields streams to the debugger (any
    // transport).
    static std::shared_ptr<bridge> create(std::unique_ptr<net::link> guest, std::unique_ptr<net::link> debugger,
                                          options o = {});

    virtual void start() = 0;
    virtual void close() = 0;
    virtual statistics stats() const = 0;
    virtual void set_notice_handler(notice_function f) = 0;
    // The debugger-side session (its endpoint's statistics, tap, notices).
    virtual net::session& debugger_session() = 0;
};

}  // namespace kdcom::bridge
