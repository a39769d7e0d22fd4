// A debugger session and a target session joined by a real OS object of a chosen kind (TCP or
// Unix socket, FIFO pair, pseudo-terminal as a serial line, shared memory), on one io_context,
// with a link wrapper on the debugger's side that can cut the connection in the middle of a packet.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include <asio/io_context.hpp>

#include "kdcom/net/link_pair.hpp"
#include "kdcom/net/session.hpp"
#include "kdcom/net/shm_link.hpp"
#include "kdcom/net/socket_link.hpp"
#include "support/cutting_link.hpp"
#include "support/decode_helpers.hpp"

namespace kdcom::test {

// The transports a session runs over in these tests: the library's link pairs.
using transport_kind = net::pair_kind;

inline std::string to_string(transport_kind k) { return std::string(net::pair_kind_name(k)); }

// A scratch directory for socket files and FIFOs, removed afterwards.
struct scratch_dir {
    scratch_dir() {
        char pattern[] = "/tmp/kdcom-test-XXXXXX";
        path = ::mkdtemp(pattern);
    }
    ~scratch_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    std::string path;
};

// A shared-memory name no other test process uses at the same time.
inline std::string unique_shm_name() {
    static int counter = 0;
    return "test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

inline std::unique_ptr<net::link_pair> make_links(asio::io_context& io, transport_kind kind) {
    std::error_code ec;
    auto links = net::link_pair::make(io.get_executor(), kind, ec);
    if (!links) throw std::system_error(ec, "making a " + to_string(kind) + " link pair");
    return links;
}

struct session_pair {
    asio::io_context io;
    scratch_dir dir;
    std::unique_ptr<net::link_pair> links;  // outlives the sessions (it holds the pty master)
    std::shared_ptr<net::session> debugger, target;
    net::listener* listener = nullptr;  // the target's, for socket kinds
    cutting_link* debugger_link = nullptr;

    session_pair(transport_kind kind, endpoint_config d, endpoint_config t, net::session_options options = {})
        : links(make_links(io, kind)), listener(links->target_listener) {
        auto cutting = std::make_unique<cutting_link>(std::move(links->debugger));
        debugger_link = cutting.get();
        d.role = role::debugger;
        t.role = role::target;
        target = net::session::create(std::move(links->target), t, options);
        debugger = net::session::create(std::move(cutting), d, options);
        target->start();
        debugger->start();
    }

    ~session_pair() {
        if (debugger) debugger->close();
        if (target) target->close();
        io.run_for(std::chrono::milliseconds(50));
    }
};// A message header as the KD manipulate messages start: its API number, then zeros.
inline bytes manipulate_like(std::uint16_t api) {
    bytes b(0x38, 0);
    b[0] = static_cast<std::uint8_t>(api);
    b[1] = static_cast<std::uint8_t>(api >> 8);
    return b;
}

}  // namespace kdcom::test
