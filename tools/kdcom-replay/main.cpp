// kdcom-replay: plays a capture or a packet script again.
//
//   kdcom-replay FILE [--transport mem|unix|tcp|fifo|serial|shm] [--faults ...] [--seed N]
//       Through the library: a debugger-role and a target-role session joined by the chosen
//       transport (with faults on both sides' writes, if asked) carry every packet of FILE in
//       order, one at a time; each must arrive byte-exact, in order, exactly once.
//   kdcom-replay FILE --as debugger|target (--connect ADDR | --listen ADDR)
//       Against a live peer: plays one side of FILE over any address, with the protocol's own
//       acknowledgements and resets, and compares what the peer sends with what FILE says it sent
//       (type and body; ids after a reset and timing are expected to vary).
//
// Exit status: 0 when everything matched, 1 on any divergence, 2 for unusable input or options.
#include <chrono>
#include <deque>
#include <optional>

#include <CLI/CLI.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <fmt/core.h>

#include "../common/address_option.hpp"
#include "../common/fault_option.hpp"
#include "../common/progress.hpp"
#include "../common/scope_exit.hpp"
#include "../common/stop_signals.hpp"
#include "../common/terminal_text.hpp"
#include "../common/tool_error.hpp"
#include "../common/tool_main.hpp"
#include "kdcom/kd/describe.hpp"
#include "kdcom/net/faulty_link.hpp"
#include "kdcom/net/link_pair.hpp"
#include "kdcom/net/open_link.hpp"
#include "kdcom/net/session.hpp"
#include "script.hpp"

namespace {
using namespace kdcom;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

struct replay_options {
    std::string input;
    std::string transport = "mem";
    std::string faults;
    unsigned seed = 1;
    std::string as, connect, listen;
    double timeout = 10;
};

std::string describe(const tools::script_packet& p) {
    const auto api = kd::message_name(p.type, p.body);
    return fmt::format("{} {}{}{} ({} bytes, {})", capture::flow_name(p.direction), wire::packet_type_name(p.type),
                       api.empty() ? "" : " ", api, p.body.size(), p.origin);
}

// How what arrived differs from what was expected, in one phrase.
std::string difference(const tools::script_packet& want, const net::received_packet& got) {
    if (got.type != want.type)
        return fmt::format("a {} arrived instead", wire::packet_type_name(got.type));
    if (got.body.size() != want.body.size())
        return fmt::format("its body is {} bytes, not {}", got.body.size(), want.body.size());
    const auto at = std::mismatch(want.body.begin(), want.body.end(), got.body.begin()).first - want.body.begin();
    return fmt::format("its body differs at byte {} (expected {:#04x}, got {:#04x})", at, want.body[at], got.body[at]);
}

// A replay's account: divergences as they are found (the first few printed in full, all
// counted), packets that matched, the progress bar, and how long each step may take.
class replay_tally {
public:
    // Progress is shown against the input read: FILE is played as it is read.
    replay_tally(tools::script_reader& script, double seconds_per_step)
        : script_(script),
          step_limit_(std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds_per_step))),
          progress_("replay", script.size()) {}

    clock_type::time_point step_deadline() const { return clock_type::now() + step_limit_; }

    void report(const std::string& text) {
        if (++divergences_ <= shown) fmt::print("divergence: {}\n", tools::printable(text));
        else if (divergences_ == shown + 1) fmt::print("(further divergences counted, not shown)\n");
        std::fflush(stdout);
    }
    void matched() { ++matched_; }

    // The packet being played arrived: it matches the script's or is a divergence.
    void compare(const tools::script_packet& want, const net::received_packet& got) {
        if (got.type == want.type && got.body == want.body) ++matched_;
        else report(fmt::format("packet {} ({}): {}", played_, describe(want), difference(want, got)));
    }
    // The next packet to play, counted; nothing at the end of the script.
    std::optional<tools::script_packet> next_packet() {
        progress_.update(script_.bytes_read());
        auto p = script_.next();
        played_ += p.has_value();
        return p;
    }
    std::size_t number() const { return played_; }  // the packet being played, from 1

    // Prints the result; the exit status it deserves.
    int finish() {
        progress_.finish();
        if (played_ == 0 && divergences_ == 0)
            throw tools::tool_error(script_.name() + ": holds no data packets to replay");
        if (divergences_ == 0) fmt::print("result: all {} packets matched\n", played_);
        else fmt::print("result: {} of {} packets matched, {} divergences\n", matched_, played_, divergences_);
        return divergences_ == 0 ? tools::exit_ok : tools::exit_mismatch;
    }

private:
    static constexpr std::size_t shown = 20;
    tools::script_reader& script_;
    std::size_t played_ = 0, matched_ = 0, divergences_ = 0;
    clock_type::duration step_limit_;
    tools::progress_meter progress_;
};

// What a session has received and not yet looked at.
struct inbox {
    std::deque<net::received_packet> packets;
    std::error_code error;
};

void keep_receiving(const std::shared_ptr<net::session>& s, inbox& box) {
    s->async_receive([s, &box](std::error_code ec, net::received_packet p) {
        if (ec) {
            box.error = ec;
            return;
        }
        box.packets.push_back(std::move(p));
        keep_receiving(s, box);
    });
}

// Where every wait of a replay runs: its io_context, watched by the signals that stop it, so that
// SIGINT or SIGTERM ends any wait. One per replay, on the replay's thread.
class replay_loop {
public:
    replay_loop(asio::io_context& io, const tools::stop_signals& signals) : io_(io), signals_(signals) {}

    // Runs until `done()` or the deadline; returns done(). A SIGINT or SIGTERM ends the replay
    // (tool_error, exit 2; the sessions are closed on the way out).
    template <class Done>
    bool run_until(Done done, clock_type::time_point deadline) {
        while (!done()) {
            if (signals_.signal()) throw tools::tool_error(signals_.describe() + " before the end of the replay");
            if (clock_type::now() >= deadline) return false;
            io_.run_one_for(10ms);
        }
        return true;
    }

    // Sends `p` from `from`; true when the peer acknowledged it before the deadline (`error` says
    // how the send ended, if it did). A send still pending at the deadline is cancelled.
    bool send_and_wait(net::session& from, const tools::script_packet& p, clock_type::time_point deadline,
                       std::error_code& error) {
        struct outcome {
            bool done = false;
            std::error_code error;
        };
        auto sent = std::make_shared<outcome>();  // the handler may run after this returns
        from.async_send(p.type, p.body, {}, [sent](std::error_code ec) {
            sent->done = true;
            sent->error = ec;
        });
        const bool acknowledged = run_until([&] { return sent->done; }, deadline);
        if (!acknowledged) from.cancel_send();
        error = sent->error;
        return acknowledged;
    }

private:
    asio::io_context& io_;
    const tools::stop_signals& signals_;
};

void print_stats(const char* who, const endpoint_stats& s) {
    fmt::print("{:<9} sent {} (retransmitted {}), received {} (duplicates dropped {}), framing errors {}, resets "
               "sent {} received {}\n",
               who, s.packets_sent, s.retransmissions, s.packets_received, s.duplicates_received, s.framing_errors,
               s.resets_sent, s.resets_received);
}

int replay_through_library(tools::script_reader& script, const replay_options& opt) {
    const auto kind = net::parse_pair_kind(opt.transport);
    if (!kind) throw tools::tool_error("--transport must be one of mem, unix, tcp, fifo, serial, shm");
    const net::link_faults faults = tools::parse_faults(opt.faults, opt.seed);
    const bool faulty = faults.loss > 0 || faults.corrupt > 0 || faults.duplicate > 0 || faults.garbage > 0;

    asio::io_context io;
    auto work = asio::make_work_guard(io);
    tools::stop_signals signals(io);  // before any socket file exists
    replay_loop loop(io, signals);
    std::error_code ec;
    auto links = net::link_pair::make(io.get_executor(), *kind, ec);
    if (!links) throw tools::tool_error("cannot make a " + opt.transport + " link: " + ec.message());
    std::unique_ptr<net::link> target_link = std::move(links->target), debugger_link = std::move(links->debugger);
    if (faulty) {
        net::link_faults other = faults;
        other.seed = faults.seed + 1;
        target_link = std::make_unique<net::faulty_link>(std::move(target_link), other);
        debugger_link = std::make_unique<net::faulty_link>(std::move(debugger_link), faults);
    }
    // Default settings: the ACK timer adapts to the link.
    endpoint_config dc{.role = role::debugger}, tc{.role = role::target};
    auto debugger = net::session::create(std::move(debugger_link), dc);
    auto target = net::session::create(std::move(target_link), tc);
    signals.on_stop([&] {
        debugger->close();
        target->close();
    });
    // However the replay ends (its end, a bad line on standard input, a signal), the sessions
    // close and their handlers run: a pending receive holds its session.
    const tools::at_scope_exit close_sessions{[&] {
        debugger->close();
        target->close();
        io.run_for(20ms);
    }};
    inbox at_debugger, at_target;
    target->start();
    debugger->start();
    keep_receiving(debugger, at_debugger);
    keep_receiving(target, at_target);

    fmt::print("replaying through {} ({}){}\n", opt.transport,
               *kind == net::pair_kind::memory ? "in process" : links->debugger_address.to_string(),
               faulty ? " with faults " + opt.faults : "");
    std::fflush(stdout);
    replay_tally tally(script, opt.timeout);
    while (const auto packet = tally.next_packet()) {
        const auto& p = *packet;
        const bool down = p.direction == capture::flow::debugger_to_target;
        auto& from = down ? *debugger : *target;
        auto& box = down ? at_target : at_debugger;
        std::error_code send_error;
        if (!loop.send_and_wait(from, p, tally.step_deadline(), send_error) || send_error ||
            !loop.run_until([&] { return !box.packets.empty(); }, tally.step_deadline())) {
            tally.report(fmt::format("packet {} ({}) was not delivered within {} s{}", tally.number(), describe(p), opt.timeout,
                                     send_error ? ": " + send_error.message() : ""));
            break;  // the link is stuck; what follows would only repeat it
        }
        tally.compare(p, box.packets.front());
        box.packets.pop_front();
    }
    // Anything more that arrives was delivered twice or made up.
    io.run_for(100ms);
    for (auto* box : {&at_debugger, &at_target})
        for (const auto& extra : box->packets)
            tally.report(fmt::format("a {} of {} bytes arrived that was not sent (or arrived twice)",
                                     wire::packet_type_name(extra.type), extra.body.size()));

    print_stats("debugger", debugger->protocol().stats());
    print_stats("target", target->protocol().stats());
    return tally.finish();
}

int replay_against_peer(tools::script_reader& script, const replay_options& opt) {
    if (opt.as != "debugger" && opt.as != "target") throw tools::tool_error("--as must be debugger or target");
    if (opt.connect.empty() == opt.listen.empty()) throw tools::tool_error("--as needs one of --connect or --listen");
    const std::string& text = opt.connect.empty() ? opt.listen : opt.connect;
    auto address = tools::parse_address_option(text, opt.connect.empty() ? "--listen" : "--connect");
    if (!opt.listen.empty() && tools::connects_only(address))
        throw tools::tool_error("--listen needs an address to listen on (tcp-listen://, unix-listen://, ...)");
    if (!opt.connect.empty() && address.listens())
        throw tools::tool_error("--connect needs an address to connect to, not the listening '" + text + "'");
    const role mine = opt.as == "debugger" ? role::debugger : role::target;
    const capture::flow outgoing = mine == role::debugger ? capture::flow::debugger_to_target : capture::flow::target_to_debugger;

    asio::io_context io;
    auto work = asio::make_work_guard(io);
    tools::stop_signals signals(io);  // before any socket file exists
    replay_loop loop(io, signals);
    failure error;
    auto link = net::open_link(io.get_executor(), address, mine, error, &address);
    if (!link) throw tools::tool_error(error.message());
    // A peer that cannot be reached, or goes, ends the replay (exit 2, with the reason) unless the
    // address asks to reconnect: that is no divergence.
    auto session = net::session::create(std::move(link), net::config_for(address, {.role = mine}),
                                        {.reconnect = address.reconnect});
    signals.on_stop([&] { session->close(); });
    const tools::at_scope_exit close_session{[&] {
        session->close();
        io.run_for(20ms);
    }};
    std::string link_problem;
    session->set_notice_handler([&](const net::session_notice& n) {
        if (n.kind == net::session_notice::what::link_failed || n.kind == net::session_notice::what::stream_closed)
            link_problem = n.text;
    });
    auto lost = [&](std::error_code ec) {
        if (ec != net::session_errc::closed) return;
        throw tools::tool_error("the peer at " + address.to_string() + " is unreachable or gone" +
                                    (link_problem.empty() ? "" : ": " + link_problem),
                                tools::exit_usage);
    };
    inbox box;
    session->start();
    keep_receiving(session, box);
    fmt::print("replaying the {} side against {}\n", opt.as, address.to_string());
    std::fflush(stdout);

    replay_tally tally(script, opt.timeout);
    while (const auto packet = tally.next_packet()) {
        const auto& p = *packet;
        if (p.direction == outgoing) {
            std::error_code send_error;
            const bool acknowledged = loop.send_and_wait(*session, p, tally.step_deadline(), send_error);
            lost(send_error);
            if (!acknowledged || send_error) {
                tally.report(fmt::format("packet {} ({}): the peer did not acknowledge it within {} s{}", tally.number(),
                                         describe(p), opt.timeout, send_error ? ": " + send_error.message() : ""));
                break;
            }
            tally.matched();
        } else {
            const bool arrived = loop.run_until([&] { return !box.packets.empty() || box.error; }, tally.step_deadline());
            if (box.packets.empty()) lost(box.error);
            if (!arrived || box.packets.empty()) {
                tally.report(fmt::format("packet {} ({}): the peer sent nothing within {} s", tally.number(), describe(p), opt.timeout));
                break;
            }
            tally.compare(p, box.packets.front());
            box.packets.pop_front();
        }
    }
    print_stats(opt.as.c_str(), session->protocol().stats());
    return tally.finish();
}

int run(const replay_options& opt) {
    tools::script_reader script(opt.input);
    const bool surveyed = script.size() > 0;
    if (surveyed) {
        // A file can be read twice: once through first, so that a bad line is refused before
        // anything is played and the totals can be announced; then again as it is played.
        const auto whole = tools::survey_script(opt.input);
        fmt::print("{}: {}, {} data packets ({} d2t, {} t2d), {} body bytes{}\n", opt.input, whole.kind,
                   whole.packets, whole.down, whole.packets - whole.down, whole.body_bytes,
                   whole.folded ? fmt::format(", {} retransmissions folded", whole.folded) : "");
        if (!whole.damage.empty())
            fmt::print(stderr, "kdcom-replay: warning: {}; replaying the packets before it\n",
                       tools::printable(whole.damage));
    } else {
        fmt::print("{}: {}, played as it is read\n", opt.input, script.kind());
    }
    std::fflush(stdout);
    const int status = opt.as.empty() ? replay_through_library(script, opt) : replay_against_peer(script, opt);
    if (!surveyed && !script.damage().empty())
        fmt::print(stderr, "kdcom-replay: warning: {}; the packets before it were replayed\n",
                   tools::printable(script.damage()));
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Play a KDCOM capture (pcapng) or packet script (JSON Lines) again: through the library over "
                 "a chosen transport with faults, checking every packet arrives exactly once, or as one side "
                 "against a live peer, reporting where the peer diverges from the capture."};
    replay_options opt;
    app.add_option("file", opt.input, "A pcapng capture or a packet script ({\"dir\":\"d2t\",\"type\":2,\"body\":\"<hex>\"} "
                                      "per line); - for standard input")
        ->required();
    auto* transport = app.add_option("--transport", opt.transport,
                                     "Through the library: mem, unix, tcp, fifo, serial (a pty) or shm")
                          ->capture_default_str();
    auto* faults = app.add_option("--faults", opt.faults,
                                  "Through the library: faults on both sides' writes, loss=P,corrupt=P,dup=P,garbage=P");
    app.add_option("--seed", opt.seed, "Seed for the faults")->capture_default_str();
    auto* as = app.add_option("--as", opt.as, "Against a live peer: the side to play, debugger or target")
                   ->check(CLI::IsMember({"debugger", "target"}));
    app.add_option("--connect", opt.connect, "Against a live peer: its address (tcp://, unix://, fifo://, serial://, ...)")
        ->needs(as);
    app.add_option("--listen", opt.listen, "Against a live peer: where to wait for it (tcp-listen://, unix-listen://, ...)")
        ->needs(as);
    as->excludes(transport)->excludes(faults);
    app.add_option("--timeout", opt.timeout, "Seconds to wait for each packet")
        ->check(CLI::Range(0.01, 3600.0))
        ->capture_default_str();
    return kdcom::tools::tool_main("kdcom-replay", app, argc, argv, [&] { return run(opt); });
}
