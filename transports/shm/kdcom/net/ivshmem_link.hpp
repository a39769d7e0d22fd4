// kdcom as QEMU's ivshmem server (the address ivshmem://PATH): the guest's shared memory and
// doorbells come from QEMU's ivshmem-doorbell device, which connects to this server at start:
//
//   qemu-system-x86_64 ... -chardev socket,path=PATH,id=kd -device ivshmem-doorbell,chardev=kd,vectors=1
//
// Per QEMU connection the server makes a sealed memfd (a power of two in size, as QEMU requires)
// holding kdcom's region (kdcom/shm/layout.h), one eventfd the guest rings through the device's
// Doorbell register (the host is peer host_peer, 0) and one the host rings to interrupt the guest
// (MSI-X vector 0, delivered only if a guest driver enabled it), and sends them with QEMU's server
// protocol (QEMU docs/specs/ivshmem-spec: version 0, the client's id, the memory, then each
// peer's eventfds). QEMU keeps the region for the VM's life, across guest reboots, so each boot of
// the guest asks for a new generation (layout.h, "Generations"); each generation served is one
// stream handed out by async_open, ending when the guest asks for the next, breaks the rules, or
// its QEMU exits. One VM at a time: a second QEMU that connects meanwhile is turned away (it stops
// at start). The socket is mode 0600.
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include <asio/any_io_executor.hpp>

#include "kdcom/net/shm_link.hpp"  // shm_options, listener

namespace kdcom::net {

inline constexpr std::uint32_t ivshmem_host_peer = 0;   // the host's peer id (also in the region header)
inline constexpr std::uint32_t ivshmem_guest_peer = 1;  // the id the server gives QEMU

// Listens at `path` (a Unix socket). Streams are shm_connections (the bridge's guest side).
std::unique_ptr<listener> make_ivshmem_server(const asio::any_io_executor& ex, const std::string& path,
                                              const shm_options& options, std::error_code& ec);

// ivshmem-plain (the address ivshmem:///PATH?plain): no server and no doorbells. The region is
// the memory file at `path`, created (0600) or reused at the size this host's region needs, a
// power of two, which QEMU must be given too:
//
//   -object memory-backend-file,id=kd,mem-path=PATH,size=1M,share=on -device ivshmem-plain,memdev=kd
//
// Both sides poll: the host looks at the region every millisecond when it is not polling already.
// Generations as above. Unlike the memfd, a file cannot be sealed: a process of the same user that
// shrinks it can crash the host (SIGBUS); keep it in a private folder.
std::unique_ptr<listener> make_ivshmem_plain(const asio::any_io_executor& ex, const std::string& path,
                                             const shm_options& options, std::error_code& ec);

}  // namespace kdcom::net
