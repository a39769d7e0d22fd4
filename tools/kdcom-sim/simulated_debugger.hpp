// The simulated debugger's session, step by step, as a user at WinDbg would go: wait for the
// target's first words, break in if it runs, ask for the version, dump physical memory checking
// every byte against the fake kernel's image, write and read back, continue. With a reboot
// midway, the dump stops at half, the debugger reboots the target (.reboot), waits for the new
// boot's first words, breaks in again and dumps the rest.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <asio/use_future.hpp>
#include <fmt/core.h>

#include "../common/progress.hpp"
#include "../common/stop_signals.hpp"
#include "../common/terminal_text.hpp"
#include "../common/tool_error.hpp"
#include "kdcom/guest/memory_image.hpp"
#include "kdcom/net/kd_client.hpp"
#include "sim_options.hpp"

namespace kdcom::tools {

// What the target printed (DbgPrint) and why its link failed, as the client's handlers see them
// on the io_context's thread; read from the debugger's thread.
class target_words {
public:
    kd::client_handlers handlers() {
        kd::client_handlers h;
        h.print = [this](std::string_view text) {
            std::lock_guard lock(mutex_);
            if (prints_.size() < 64 * 1024) prints_ += text;  // shown at the first words only; bounded
        };
        h.notice = [this](const net::session_notice& n) {
            if (n.kind != net::session_notice::what::link_failed && n.kind != net::session_notice::what::stream_closed) return;
            std::lock_guard lock(mutex_);
            link_problem_ = n.text;
        };
        return h;
    }
    // What the target printed since the last look (taken, so a chatty target grows nothing).
    std::string take_prints() {
        std::lock_guard lock(mutex_);
        return std::exchange(prints_, {});
    }
    std::string link_problem() const {
        std::lock_guard lock(mutex_);
        return link_problem_;
    }

private:
    mutable std::mutex mutex_;
    std::string prints_, link_problem_;
};

struct debugger_plan {
    std::uint64_t dump_mib = 64;
    bool fast_path = false;                // said in the dump's line: the host answers the reads
    std::chrono::milliseconds patience{};  // long enough for a packet to cross the line
    std::size_t max_transfer = 0;          // the client's largest read
    bool reboot_midway = false;
    std::chrono::milliseconds boot_time{60'000};  // how long a rebooted target may take to speak
};

namespace detail {

// A failed step: the target unreachable or lost is exit 2 with the reason, a signal exit 2,
// anything else a mismatch.
[[noreturn]] inline void give_up(const stop_signals& signals, const target_words& words, const std::string& what,
                                 std::error_code why) {
    if (signals.signal()) throw tool_error(signals.describe() + " while the debugger " + what, exit_usage);
    if (why == net::session_errc::closed) {
        const auto problem = words.link_problem();
        throw tool_error("the debugger lost the target (" + what + ")" + (problem.empty() ? "" : ": " + problem), exit_usage);
    }
    throw tool_error("the debugger " + what + ": " + why.message(), exit_mismatch);
}

// Waits up to `first_wait` for the target's first words (a booting kernel prints first; one that
// is running says nothing; one that stopped, at boot or under an earlier debugger, reports its
// state after the reset handshake, maybe after a print, as Xen's kdd does), until a stop or until
// the line goes quiet; then breaks in if it did not stop.
template <class GiveUp>
void meet_target(kd::client& client, target_words& words, std::chrono::milliseconds first_wait, const debugger_plan& plan,
                 GiveUp&& give_up) {
    std::error_code ec;
    fmt::print("debugger: waiting for the target's first words\n");
    std::optional<kd::stop_report> first;
    bool heard = false;
    // In slices, so that a print ends the wait early: after words, a short wait for a stop right
    // behind them, and another while more words come.
    const auto deadline = std::chrono::steady_clock::now() + first_wait;
    const auto slice = std::min(first_wait, 2 * plan.patience);
    const auto behind = std::max<std::chrono::milliseconds>(std::chrono::milliseconds(300), plan.patience / 3);
    for (;;) {
        auto stop = client.wait_state_change(heard ? behind : slice, ec);
        const auto text = words.take_prints();
        if (!text.empty()) fmt::print("target says: {}", printable(text, line_breaks::keep));
        if (!ec) {
            first = std::move(stop);
            break;
        }
        if (ec != net::session_errc::timed_out) give_up("waited for the target's first words", ec);
        if (heard && text.empty()) break;  // it spoke, then went quiet
        heard = heard || !text.empty();
        if (!heard && std::chrono::steady_clock::now() >= deadline) break;
    }
    if (!first && !heard) fmt::print("debugger: the target said nothing (it may be running already)\n");
    if (!first) {
        fmt::print("debugger: break-in (Ctrl+Break)\n");
        first = client.break_in(ec);
        if (ec) give_up("broke in and the target did not stop", ec);
        // A break-in is one byte nobody acknowledges: a lossy line can eat it, and the client
        // presses again, as a user at WinDbg would.
        for (unsigned press = 1; press < client.breakin_presses(); ++press)
            fmt::print("debugger: the target did not stop; Ctrl+Break again\n");
    } else {
        fmt::print("debugger: the target is stopped already\n");
    }
    fmt::print("target: Break instruction exception - code {:08x} at {:#x}\n", first->header.exception.code,
               first->header.program_counter);
}

struct dump_result {
    std::uint64_t mismatched_reads = 0;
    double seconds = 0;
};

// Reads `length` bytes of physical memory from `start`, on the session's own thread as fast as
// the link allows, each piece checked as it arrives; this thread shows the progress (of `total`).
template <class GiveUp>
dump_result dump(kd::client& client, const guest::memory_image& reference, std::uint64_t start, std::uint64_t length,
                 std::uint64_t total, const debugger_plan& plan, GiveUp&& give_up) {
    progress_meter progress("dump", total);
    const auto dump_start = std::chrono::steady_clock::now();
    std::atomic<std::uint64_t> done_bytes{start};
    dump_result result;
    std::vector<std::uint8_t> expected(plan.max_transfer);
    auto dumped = client.async_read_memory(
        kd::memory_space::physical_memory, start, length,
        [&](std::uint64_t offset, std::span<const std::uint8_t> piece) {  // offset: from `start`
            const auto want = std::span(expected).first(piece.size());
            reference.read(start + offset, want);
            if (!std::equal(want.begin(), want.end(), piece.begin())) ++result.mismatched_reads;
            done_bytes = start + offset + piece.size();
        },
        asio::use_future);
    while (dumped.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) progress.update(done_bytes);
    try {
        dumped.get();
    } catch (const std::system_error& e) {
        give_up(fmt::format("stopped the dump after {} of {} bytes", done_bytes.load(), total), e.code());
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - dump_start).count();
    return result;
}

}  // namespace detail

// Runs the steps on the calling thread (the client's io_context runs on another); true when every
// byte read was the image's. A failed step throws tool_error (detail::give_up).
inline bool run_debugger_steps(kd::client& client, target_words& words, const stop_signals& signals,
                               const guest::memory_image& reference, const debugger_plan& plan) {
    auto give_up = [&](const std::string& what, std::error_code why) { detail::give_up(signals, words, what, why); };
    std::error_code ec;
    detail::meet_target(client, words, 2 * plan.patience, plan, give_up);
    const auto version = client.get_version(ec);
    if (ec) give_up("asked for the version", ec);
    fmt::print("debugger: Windows {}.{} kernel, machine {:#x}, kernel base {:#x}\n", version.major_version,
               version.minor_version, version.machine_type, version.kern_base);

    const std::uint64_t dump_bytes = plan.dump_mib << 20;
    fmt::print("debugger: dumping {} MiB of physical memory in {}-byte reads{}\n", plan.dump_mib, plan.max_transfer,
               plan.fast_path ? " (fast path: the host answers)" : "");
    const std::uint64_t half = plan.reboot_midway ? dump_bytes / 2 : dump_bytes;
    detail::dump_result dumped = detail::dump(client, reference, 0, half, dump_bytes, plan, give_up);
    if (plan.reboot_midway) {
        fmt::print("debugger: .reboot at {} of {} bytes\n", half, dump_bytes);
        client.reboot(ec);
        if (ec) give_up("asked the target to reboot", ec);
        detail::meet_target(client, words, plan.boot_time, plan, give_up);
        fmt::print("debugger: the target is back after its reboot; dumping the rest\n");
        const auto rest = detail::dump(client, reference, half, dump_bytes - half, dump_bytes, plan, give_up);
        dumped.mismatched_reads += rest.mismatched_reads;
        dumped.seconds += rest.seconds;
    }
    fmt::print("debugger: dump done, {:.1f} MB/s{}\n", static_cast<double>(dump_bytes) / dumped.seconds / 1e6,
               dumped.mismatched_reads ? fmt::format(", {} reads did NOT match the image", dumped.mismatched_reads)
                                       : ", every byte matched");

    const std::vector<std::uint8_t> pattern(64, 0xC3);
    const auto written = client.write_memory(kd::memory_space::virtual_memory, kern_base + 0x2000, pattern, ec);
    if (ec) give_up("wrote memory", ec);
    const auto back = client.read_memory(kd::memory_space::virtual_memory, kern_base + 0x2000, 64, ec);
    if (ec) give_up("read back what it wrote", ec);
    const bool write_ok = written == 64 && back == pattern;
    fmt::print("debugger: wrote 64 bytes at {:#x} and read them back: {}\n", kern_base + 0x2000, write_ok ? "same" : "DIFFERENT");
    fmt::print("debugger: g (continue)\n");
    client.continue_running(kd::status::dbg_continue, false, ec);
    if (ec) give_up("continued", ec);
    return dumped.mismatched_reads == 0 && write_ok;
}

}  // namespace kdcom::tools
