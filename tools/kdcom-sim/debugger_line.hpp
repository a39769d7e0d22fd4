// Where kdcom-sim's simulated debugger connects, and what is at the other end: a target this
// program does not run (--target), the bridge and the kernel as processes of their own
// (--separate), or both in this process behind a link of the chosen kind (the default).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "../common/address_option.hpp"
#include "../common/tool_error.hpp"
#include "kdcom/bridge/bridge.hpp"
#include "kdcom/guest/fake_kernel.hpp"
#include "kdcom/net/link_pair.hpp"
#include "kdcom/net/open_link.hpp"
#include "kdcom/net/rate_limited_link.hpp"
#include "kdcom/net/socket_link.hpp"
#include "sim_options.hpp"
#include "target_machine.hpp"

namespace kdcom::tools {

struct debugger_line {
    std::unique_ptr<net::link> link;  // the debugger's end, paced if asked; the caller adds faults
    std::unique_ptr<target_machine> target;
    std::unique_ptr<net::link_pair> pair;  // an in-process pair, kept while its ends are in use
    endpoint_config config;                // the debugger's endpoint settings
    std::optional<transport::address> target_address;  // --target's
};

// A TCP port free now on 127.0.0.1, for a bridge process to listen on.
inline std::uint16_t free_tcp_port(asio::io_context& io) {
    asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
    return probe.local_endpoint().port();
}

// Makes the debugger's line and the machine at its other end. `bo`: the bridge's options (its ACK
// timer settings are the debugger's too); `name`: this run's, for its shared memory and sockets.
// Throws tool_error for options that do not go together or a line that cannot be made.
inline debugger_line connect_debugger(const sim_options& opt, asio::io_context& io, const std::string& name,
                                      guest::memory_image& memory, const bridge::options& bo,
                                      const guest::fake_kernel_options& kernel_options) {
    debugger_line line;
    line.config = {.role = role::debugger};
    line.config.ack_timeout = bo.endpoint.ack_timeout;
    line.config.ack_timeout_min = bo.endpoint.ack_timeout_min;
    line.config.ack_timeout_max = bo.endpoint.ack_timeout_max;
    if (!opt.target.empty()) {
        // The simulated debugger alone, against whatever target is at that address.
        if (opt.separate || opt.fast_path) throw tool_error("--target runs only the debugger: no --separate, no --fast-path");
        failure error;
        const auto address = parse_address_option(opt.target, "--target");
        line.target_address = address;
        line.config = net::config_for(address, line.config);  // ?resets=0
        line.link = net::open_link(io.get_executor(), address, role::debugger, error);
        if (!line.link) throw tool_error(error.message());
        line.target = std::make_unique<external_machine>(address.to_string());
    } else if (opt.separate) {
        if (opt.fast_path) throw tool_error("--fast-path needs the bridge in this process (it reads the guest's memory)");
        const auto self = std::filesystem::read_symlink("/proc/self/exe");
        const auto bridge_program = self.parent_path() / "kdcom-bridge";
        if (!std::filesystem::exists(bridge_program))
            throw tool_error("--separate needs kdcom-bridge beside kdcom-sim, not found at " + bridge_program.string());
        const std::string rate = opt.rate > 0 ? "?rate=" + std::to_string(opt.rate) : "";
        std::string bridge_address;
        if (opt.transport == "unix") {
            const auto path = std::filesystem::temp_directory_path() / (name + ".sock");
            bridge_address = "unix-listen://" + path.string() + rate;
            line.link = net::make_unix_client(io.get_executor(), path.string());
        } else if (opt.transport == "tcp") {
            const std::uint16_t port = free_tcp_port(io);
            bridge_address = "tcp-listen://127.0.0.1:" + std::to_string(port) + rate;
            line.link = net::make_tcp_client(io.get_executor(), "127.0.0.1", port);
        } else {
            throw tool_error("with --separate, --transport must be unix or tcp");
        }
        line.target = std::make_unique<separate_machine>(
            bridge_program.string(), name, bridge_address,
            std::vector<std::string>{self.string(), "--part", "kernel", "--shm", name, "--dump", std::to_string(opt.dump_mib),
                                     "--seed", std::to_string(opt.seed)});
    } else {
        const auto kind = net::parse_pair_kind(opt.transport);
        if (!kind) throw tool_error("--transport must be one of mem, unix, tcp, fifo, serial, shm");
        std::error_code ec;
        line.pair = net::link_pair::make(io.get_executor(), *kind, ec);
        if (!line.pair) throw tool_error("cannot make the debugger's " + opt.transport + " link: " + ec.message());
        std::unique_ptr<net::link> bridge_side = std::move(line.pair->target);
        line.link = std::move(line.pair->debugger);
        if (opt.rate > 0) bridge_side = std::make_unique<net::rate_limited_link>(std::move(bridge_side), opt.rate);
        line.target = std::make_unique<in_process_machine>(io, name, memory, bo, std::move(bridge_side), kernel_options);
    }
    if (opt.rate > 0) line.link = std::make_unique<net::rate_limited_link>(std::move(line.link), opt.rate);
    return line;
}

}  // namespace kdcom::tools
