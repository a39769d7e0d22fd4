// A guest region a VMM supplies, as a link: what a VMM plugin hands the bridge. The VMM owns the
// guest's shared pages (the region of layout.h, initialised by the guest driver, or by the VMM with
// shm::region::initialise) and the two directions of signalling:
// - `interrupt_guest`, which the link calls to wake the guest (inject an interrupt);
// - doorbell(), which the VMM calls when the guest traps to signal the host (from any thread).
// The VMM calls guest_reset() when the guest reboots or re-announces the region: the connection
// handed out ends (as a guest process exiting would), and the next one reads the region afresh.
//
// The region is hostile exactly as with shm:// (shm_connection.hpp): its header is checked when a
// connection starts, and everything after that is copied once and validated.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <system_error>

#include <asio/any_io_executor.hpp>

#include "kdcom/net/shm_connection.hpp"
#include "kdcom/net/shm_link.hpp"

namespace kdcom::net {

class vmm_guest_link : public link {
public:
    // The guest signalled the host. Thread-safe; cheap (one eventfd write).
    virtual void doorbell() = 0;
    // The guest rebooted or re-initialised the region. Thread-safe.
    virtual void guest_reset() = 0;
};

// `region` must stay mapped while the link and its connections live. Fails (errc::...) only if the
// link's own doorbell cannot be created.
std::unique_ptr<vmm_guest_link> make_vmm_guest_link(const asio::any_io_executor& ex, std::span<std::uint8_t> region,
                                                    std::function<void()> interrupt_guest, const shm_options& options,
                                                    std::error_code& ec);

}  // namespace kdcom::net
