// A model of another program's KDCOM target (include/kdcom/sim/peers/) served at a real address,
// in real time, so that kdcom's tools can be run against it as a user would run them against a VM:
//
//     kdcom_peer_model MODEL ADDRESS
//
// MODEL is windows, reactos, reactos-old or kdd; ADDRESS a listening address (unix-listen://PATH,
// tcp-listen://HOST:PORT). The model is one machine for the whole run: debuggers may connect one
// after another and find it as the last one left it (a persistent line). Its memory is the fake
// kernel's image (seed 1, kernel base 0xfffff80000000000), so kdcom-sim's checks hold. Prints
// "serving MODEL at ADDRESS" once it listens; runs until SIGINT or SIGTERM.
#include <cstdio>
#include <memory>
#include <string>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include "kdcom/guest/memory_image.hpp"
#include "kdcom/net/open_link.hpp"
#include "kdcom/sim/peers/kdd_target.hpp"
#include "kdcom/sim/peers/kddll_target.hpp"
#include "kdcom/transport/address.hpp"
#include "support/node_runner.hpp"

namespace {
using namespace kdcom;

constexpr std::uint64_t kern_base = 0xfffff80000000000u;

std::unique_ptr<sim::node> make_model(const std::string& name, sim::simulated_memory memory) {
    if (name == "windows") return std::make_unique<sim::peers::kddll_target>(sim::peers::windows_kdcom(), std::move(memory));
    if (name == "reactos") return std::make_unique<sim::peers::kddll_target>(sim::peers::reactos_kdcom(), std::move(memory));
    if (name == "reactos-old")
        return std::make_unique<sim::peers::kddll_target>(sim::peers::reactos_kddll_old(), std::move(memory));
    if (name == "kdd") return std::make_unique<sim::peers::kdd_target>(std::move(memory));
    return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: kdcom_peer_model windows|reactos|reactos-old|kdd LISTEN-ADDRESS\n");
        return 2;
    }
    const guest::memory_image image(1 << 20, 1);
    // Physical addresses from 0, virtual ones from the kernel base: one image under both.
    auto model = make_model(argv[1], sim::simulated_memory([&image](std::uint64_t a) {
        return image.pristine(a >= kern_base ? a - kern_base : a);
    }));
    kdcom::failure error;
    const auto address = transport::parse_address(argv[2], error);
    if (!model || !address) {
        std::fprintf(stderr, "kdcom_peer_model: %s\n", model ? error.message().c_str() : "unknown model");
        return 2;
    }
    asio::io_context io;
    auto link = net::open_link(io.get_executor(), *address, role::target, error);
    if (!link) {
        std::fprintf(stderr, "kdcom_peer_model: %s\n", error.message().c_str());
        return 2;
    }
    auto runner = std::make_shared<test::node_runner>(io.get_executor(), *model);
    std::function<void()> accept = [&] {
        link->async_open([&](std::error_code ec, std::unique_ptr<net::byte_stream> stream) {
            if (ec) return;
            std::printf("debugger connected: %s\n", stream->describe().c_str());
            std::fflush(stdout);
            runner->attach(std::move(stream));
        });
    };
    runner->on_stream_end = [&] {
        std::printf("debugger gone\n");
        std::fflush(stdout);
        accept();
    };
    runner->start();
    accept();
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) {
        runner->close();
        link->close();
        io.stop();
    });
    std::printf("serving %s at %s\n", argv[1], address->to_string().c_str());
    std::fflush(stdout);
    io.run();
    return 0;
}
