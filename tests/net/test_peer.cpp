// A debugger process for tests: connects to ADDRESS, takes every packet the target sends, and
// prints the sequence number in each body (its first four bytes) on its own line, flushed at once.
// Runs until killed.   kdcom_test_peer ADDRESS
#include <cstdio>
#include <cstring>

#include <asio/io_context.hpp>

#include "kdcom/net/open_link.hpp"
#include "kdcom/net/session.hpp"

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    kdcom::failure error;
    const auto address = kdcom::transport::parse_address(argv[1], error);
    if (!address) return 2;
    asio::io_context io;
    auto link = kdcom::net::open_link(io.get_executor(), *address, kdcom::role::debugger, error);
    if (!link) return 2;
    kdcom::endpoint_config config{.role = kdcom::role::debugger};
    config.implicit_ack = false;
    // Hand packets over one at a time, so that few are acknowledged before they are printed.
    kdcom::net::session_options options;
    options.receive_queue_limit = 1;
    auto session = kdcom::net::session::create(std::move(link), config, options);
    session->start();
    std::function<void()> receive = [&] {
        session->async_receive([&](std::error_code ec, kdcom::net::received_packet p) {
            if (ec) return;
            std::uint32_t sequence = 0;
            if (p.body.size() >= 4) std::memcpy(&sequence, p.body.data(), 4);
            std::printf("%u\n", sequence);
            std::fflush(stdout);
            receive();
        });
    };
    receive();
    io.run();
}
