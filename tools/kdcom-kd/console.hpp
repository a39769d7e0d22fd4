// The commands of kdcom-kd: WinDbg's names and forms where WinDbg has them, run one at a time
// against a kd::client with its blocking calls (the client's session runs on another thread).
//
// Each command ends with a status: 0 done, 1 the target refused or could not do it (an NTSTATUS,
// a short read), 2 unusable input (an unknown command, a bad address or range: nothing is sent)
// or the target unreachable or lost.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kdcom/net/kd_client.hpp"
#include "output.hpp"

namespace kdcom::tools::kd_console {

inline constexpr int status_ok = 0;
inline constexpr int status_target_failed = 1;
inline constexpr int status_unusable = 2;

class console {
public:
    // `timeout`: how long `wait`, `.breakin` and attaching wait for the target to stop.
    console(kd::client& client, output& out, std::chrono::milliseconds timeout)
        : client_(client), out_(out), timeout_(timeout) {}

    // Waits for the target to report a stop by itself (a stopped target does after the reset
    // handshake; a booting one may), then, with `break_in`, breaks in. Returns a status.
    int attach(bool break_in);

    // Runs one command ("db fffff800`00001000 L20"). Returns its status.
    int run(std::string_view line);

    // After q or .detach.
    bool quitting() const noexcept { return quitting_; }

    // The commands of a -c argument: split at ';', blanks trimmed, empty ones dropped.
    static std::vector<std::string> split_commands(std::string_view text);

    static std::string help();

    // A state change as WinDbg words it ("Break instruction exception - code 80000003 ...").
    static std::string describe_stop(const kd::stop_report& stop);

private:
    struct breakpoint {
        std::uint64_t address;
        std::uint32_t handle;  // the target's
    };

    void version();
    void registers(const std::vector<std::string>& args);
    void display(std::string_view name, const std::vector<std::string>& args);
    void enter(std::string_view name, const std::vector<std::string>& args);
    void write_memory_to_file(const std::vector<std::string>& args);
    void read_msr(const std::vector<std::string>& args);
    void write_msr(const std::vector<std::string>& args);
    void port_in(std::string_view name, const std::vector<std::string>& args);
    void port_out(std::string_view name, const std::vector<std::string>& args);
    void set_breakpoint(const std::vector<std::string>& args);
    void list_breakpoints();
    void clear_breakpoints(const std::vector<std::string>& args);
    void go(bool trace, std::string_view name);
    void wait_for_stop(std::string_view name);
    void break_in();
    void reboot();
    void detach();

    // Throws a command_error (status 2) unless `text` is a number or @register.
    std::uint64_t value_of(std::string_view text);
    // The status for a failed client call, and a message naming what was tried.
    [[noreturn]] void fail(std::string_view what, std::error_code ec);
    void done(std::string_view text, nlohmann::ordered_json object);

    kd::client& client_;
    output& out_;
    std::chrono::milliseconds timeout_;
    bool quitting_ = false;
    std::string command_;  // the one running, for its JSON object
    std::map<unsigned, breakpoint> breakpoints_;  // by WinDbg's breakpoint number
};

}  // namespace kdcom::tools::kd_console
