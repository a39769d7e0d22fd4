// The bridge and a debugger-role session on an io_context thread of their own, for tests whose
// guest makes blocking calls from the test's thread. The debugger can reach the bridge over any
// kind of link (a Unix socket by default).
#pragma once

#include <future>
#include <thread>

#include <asio/executor_work_guard.hpp>

#include "kdcom/bridge/bridge.hpp"
#include "kdcom/net/faulty_link.hpp"
#include "support/net_pair.hpp"

namespace kdcom::test {

struct running_bridge {
    asio::io_context io;
    scratch_dir dir;
    std::string name = unique_shm_name();
    std::unique_ptr<net::link_pair> debugger_links;  // the bridge takes one end, the debugger the other
    std::shared_ptr<bridge::bridge> bridge;
    std::shared_ptr<net::session> debugger;
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    std::thread runner;

    // The debugger reaches the bridge over a link of `kind`, which loses and damages that share of
    // what the debugger writes (then both sides retransmit quickly). With `debugger_session`
    // false, the debugger's end of the link is left in debugger_links for the test to open.
    explicit running_bridge(bridge::options options = {}, transport_kind kind = transport_kind::unix_socket,
                            double loss = 0, double corrupt = 0, bool debugger_session = true)
        : debugger_links(make_links(io, kind)) {
        endpoint_config debugger_config{.role = role::debugger};
        if (loss > 0 || corrupt > 0) {
            debugger_links->debugger =
                std::make_unique<net::faulty_link>(std::move(debugger_links->debugger), net::link_faults{.loss = loss, .corrupt = corrupt, .seed = 7});
            debugger_config.ack_timeout = options.endpoint.ack_timeout = std::chrono::milliseconds(50);
        }
        std::error_code ec;
        auto shm_host = net::make_shm_host(io.get_executor(), name, {}, ec);
        if (ec) throw std::system_error(ec);
        start(std::move(shm_host), std::move(options), debugger_config, debugger_session);
    }
    // The bridge's guest side is the link `make_guest` makes (an ivshmem server, a VMM's region)
    // instead of shm://name; the debugger reaches it over a Unix socket.
    template <class MakeGuest>
    explicit running_bridge(MakeGuest make_guest, bridge::options options = {})
        : debugger_links(make_links(io, transport_kind::unix_socket)) {
        start(make_guest(io, dir), std::move(options), {.role = role::debugger}, true);
    }
    ~running_bridge() { stop(); }
    void stop() {
        if (!runner.joinable()) return;
        // Close everything on its own thread, then let the loop run out of work and end.
        asio::post(io, [this] {
            if (debugger) debugger->close();
            bridge->close();
        });
        work.reset();
        runner.join();
    }
    void start(std::unique_ptr<net::link> guest, bridge::options options, const endpoint_config& debugger_config,
               bool debugger_session) {
        bridge = bridge::bridge::create(std::move(guest), std::move(debugger_links->target), std::move(options));
        bridge->start();
        if (debugger_session) {
            debugger = net::session::create(std::move(debugger_links->debugger), debugger_config);
            debugger->start();
        }
        runner = std::thread([this] { io.run(); });
    }
    // Runs `f` on the io_context's thread (where the sessions live) and waits for it.
    template <class F>
    void on_io(F f) {
        std::promise<void> done;
        asio::post(io, [&] {
            f();
            done.set_value();
        });
        done.get_future().get();
    }
    bridge::statistics stats() {
        std::promise<bridge::statistics> p;
        asio::post(io, [&] { p.set_value(bridge->stats()); });
        return p.get_future().get();
    }
};

}  // namespace kdcom::test
