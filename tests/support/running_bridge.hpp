// The bridge and a debugger-role session on an io_context thread of their own, for tests whose
// guest makes blocking calls from the test's thread.
#pragma once

#include <future>
#include <thread>

#include <asio/executor_work_guard.hpp>

#include "kdcom/bridge/bridge.hpp"
#include "support/net_pair.hpp"

namespace kdcom::test {

struct running_bridge {
    asio::io_context io;
    scratch_dir dir;
    std::string name = unique_shm_name();
    std::shared_ptr<bridge::bridge> bridge;
    std::shared_ptr<net::session> debugger;
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    std::thread runner;

    explicit running_bridge(bridge::options options = {}) {
        std::error_code ec;
        auto shm_host = net::make_shm_host(io.get_executor(), name, {}, ec);
        auto listener = net::make_unix_listener(io.get_executor(), dir.path + "/kd.sock", ec);
        if (ec) throw std::system_error(ec);
        bridge = bridge::bridge::create(std::move(shm_host), std::move(listener), std::move(options));
        bridge->start();
        debugger = net::session::create(net::make_unix_client(io.get_executor(), dir.path + "/kd.sock"),
                                        {.role = role::debugger});
        debugger->start();
        runner = std::thread([this] { io.run(); });
    }
    ~running_bridge() { stop(); }
    void stop() {
        if (!runner.joinable()) return;
        // Close everything on its own thread, then let the loop run out of work and end.
        asio::post(io, [this] {
            debugger->close();
            bridge->close();
        });
        work.reset();
        runner.join();
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
