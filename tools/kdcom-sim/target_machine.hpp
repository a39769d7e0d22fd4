// The target side of kdcom-sim: the bridge and the fake kernel behind it, either in this process
// (the bridge on the io_context's thread, the kernel on a thread of its own, as a vCPU) or as two
// processes of their own (kdcom-bridge, and kdcom-sim --part kernel), as a VMM and its guest would
// be. The simulated debugger does not know which.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <exception>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <fmt/core.h>

#include "../common/tool_error.hpp"
#include "kdcom/bridge/bridge.hpp"
#include "kdcom/guest/fake_kernel.hpp"
#include "kdcom/net/shm_link.hpp"

extern char** environ;

namespace kdcom::tools {

class target_machine {
public:
    virtual ~target_machine() = default;
    // Boots the kernel; once the io_context runs (the bridge must answer the guest's attach).
    virtual void power_on() {}
    // Switches the kernel off and stops the bridge. Idempotent.
    virtual void switch_off() = 0;
    // The summary rows only this side knows.
    virtual void print_summary() = 0;
};

inline void print_row(const std::string& what, const std::string& value) { fmt::print("{:<40} {:>12}\n", what, value); }

class in_process_machine final : public target_machine {
public:
    // `debugger_link`: the bridge's end of the debugger's link. Runs the bridge on `io` (whose
    // thread the caller runs) and the kernel on its own thread.
    in_process_machine(asio::io_context& io, std::string name, guest::memory_image& memory, bridge::options options,
                       std::unique_ptr<net::link> debugger_link, guest::fake_kernel_options kernel_options)
        : io_(io), name_(std::move(name)), memory_(memory), kernel_options_(kernel_options) {
        std::error_code ec;
        auto guest_link = net::make_shm_host(io.get_executor(), name_, {}, ec);
        if (!guest_link) throw tool_error("cannot create the guest's shared memory: " + ec.message());
        bridge_ = bridge::bridge::create(std::move(guest_link), std::move(debugger_link), std::move(options));
        bridge_->start();
    }
    ~in_process_machine() override { switch_off(); }

    void power_on() override {
        char error[256] = {};
        guest_ = kdcom_guest_attach(name_.c_str(), error, sizeof error);
        if (!guest_) throw tool_error(std::string("the guest could not attach: ") + error);
        kernel_ = std::make_unique<guest::fake_kernel>(guest_, memory_, kernel_options_);
        thread_ = std::thread([this] {
            kernel_->print("fake kernel: booted, waiting for the debugger\n");
            kernel_->run(stop_);
        });
    }

    void switch_off() override {
        if (stop_.exchange(true)) return;
        // A kernel waiting in a call (sending to a debugger that is gone) returns from it now.
        if (guest_) kdcom_guest_interrupt(guest_);
        if (thread_.joinable()) thread_.join();
        if (guest_) {
            carried_dropped_ = kdcom_guest_carried_packets_dropped(guest_);
            kdcom_guest_detach(guest_);
        }
        // The bridge's figures, read on its thread before it closes.
        auto closed = std::make_shared<std::promise<void>>();
        auto done = closed->get_future();
        asio::post(io_, [this, closed] {
            stats_ = bridge_->stats();
            bridge_retransmissions_ = bridge_->debugger_session().protocol().stats().retransmissions;
            bridge_->close();
            closed->set_value();
        });
        // Bounded: an io_context that never ran takes the bridge (and this handler) with it.
        done.wait_for(std::chrono::seconds(2));
    }

    void print_summary() override {
        print_row("retransmissions by the bridge", std::to_string(bridge_retransmissions_));
        print_row("guest crossings (calls + answers)", std::to_string(stats_.guest_calls + stats_.guest_answers));
        print_row("requests given with a send's answer", std::to_string(stats_.packets_carried));
        // Packets of a type the kernel was not waiting for, dropped as kdcom.dll drops them.
        print_row("packets the kernel was not waiting for", std::to_string(stats_.packets_dropped + carried_dropped_));
        print_row("fast-path reads", std::to_string(stats_.fast_path_reads));
        if (kernel_) print_row("times the kernel stopped", std::to_string(kernel_->stats().breaks));  // a damaged byte can read as 'b'
    }

private:
    asio::io_context& io_;
    std::string name_;
    guest::memory_image& memory_;
    guest::fake_kernel_options kernel_options_;
    std::shared_ptr<bridge::bridge> bridge_;
    kdcom_guest* guest_ = nullptr;
    std::unique_ptr<guest::fake_kernel> kernel_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    bridge::statistics stats_{};
    std::uint64_t bridge_retransmissions_ = 0;
    std::uint64_t carried_dropped_ = 0;  // by the guest library (the bridge never sees those)
};

// A target this program does not run (kdcom-sim --target ADDR): nothing to start or stop.
class external_machine final : public target_machine {
public:
    explicit external_machine(std::string where) : where_(std::move(where)) {}
    void switch_off() override {}
    void print_summary() override { fmt::print("the target ran elsewhere, at {}\n", where_); }

private:
    std::string where_;
};

class separate_machine final : public target_machine {
public:
    // Starts `bridge_program` (kdcom-bridge) with the guest at shm://NAME and the debugger at
    // `debugger_address`, and `kernel_command` (the kernel part), both writing to a new log in the
    // temp dir (made with mkostemps: a fresh name, mode 0600, never a file planted there).
    separate_machine(const std::string& bridge_program, const std::string& name, const std::string& debugger_address,
                     const std::vector<std::string>& kernel_command) {
        std::string pattern = (std::filesystem::temp_directory_path() / (name + "-XXXXXX.log")).string();
        log_fd_ = ::mkostemps(pattern.data(), 4, O_CLOEXEC);
        if (log_fd_ < 0) throw tool_error(fmt::format("cannot create a log in {}: {}", pattern, std::strerror(errno)));
        log_ = pattern;
        bridge_ = spawn({bridge_program, "--guest", "shm://" + name, "--debugger", debugger_address});
        // The kernel attaches once the bridge's shared memory is there.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!std::filesystem::exists(net::shm_rendezvous_path(name)) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        kernel_ = spawn(kernel_command);
    }
    // The log goes with a normal end; when an error is on its way out, it stays for the user.
    ~separate_machine() override {
        switch_off();
        ::close(log_fd_);
        if (std::uncaught_exceptions() > 0) fmt::print(stderr, "the bridge's and the kernel's output: {}\n", log_);
        else ::unlink(log_.c_str());
    }

    void switch_off() override {
        for (pid_t* pid : {&kernel_, &bridge_}) {
            if (*pid <= 0) continue;
            ::kill(*pid, SIGTERM);
            int status = 0;
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
            while (::waitpid(*pid, &status, WNOHANG) == 0) {
                if (std::chrono::steady_clock::now() > deadline) {
                    ::kill(*pid, SIGKILL);
                    ::waitpid(*pid, &status, 0);
                    break;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            *pid = -1;
        }
    }

    void print_summary() override {
        // The bridge's own last word on what crossed it.
        std::ifstream in(log_);
        std::string line, statistics;
        while (std::getline(in, line))
            if (line.rfind("statistics: ", 0) == 0) statistics = line;
        if (!statistics.empty()) fmt::print("bridge {}\n", statistics);
        fmt::print("the bridge and the kernel ran as processes of their own\n");
    }

private:
    pid_t spawn(const std::vector<std::string>& command) {
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, log_fd_, STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&actions, log_fd_, STDERR_FILENO);
        std::vector<char*> argv;
        for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        pid_t pid = -1;
        const int error = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        if (error != 0) throw tool_error(fmt::format("cannot start {}: {}", command[0], std::strerror(error)));
        return pid;
    }

    std::string log_;
    int log_fd_ = -1;  // O_APPEND is not needed: both children share this one file offset
    pid_t bridge_ = -1, kernel_ = -1;
};

}  // namespace kdcom::tools
