#include "console.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "../common/progress.hpp"
#include "kdcom/kd/status.hpp"
#include "numbers.hpp"

namespace kdcom::tools::kd_console {
namespace {

using json = nlohmann::ordered_json;

struct command_error {
    int status;
    std::string message;
};

[[noreturn]] void unusable(std::string message) { throw command_error{status_unusable, std::move(message)}; }

// A failed command: its JSON object, and in text mode its message on stderr. Returns its status.
int report(output& out, const std::string& command, const command_error& e) {
    out.emit("", json{{"command", command}, {"ok", false}, {"status", e.status}, {"error", e.message}});
    if (!out.json()) out.complain(e.message);
    return e.status;
}

// What a memory command's name says: db/dd/dq (and eb/ed/eq) on virtual memory, with '!' physical.
struct memory_command {
    kd::memory_space space;
    unsigned unit;  // bytes per value: b 1, d 4, q 8
};
memory_command memory_command_of(std::string_view name) {
    const bool physical = name[0] == '!';
    const char kind = name[physical ? 2 : 1];
    return {physical ? kd::memory_space::physical_memory : kd::memory_space::virtual_memory,
            kind == 'b' ? 1u : kind == 'd' ? 4u : 8u};
}

// ib/ob 1 byte, iw/ow 2, id/od 4.
unsigned port_width(std::string_view name) { return name[1] == 'b' ? 1 : name[1] == 'w' ? 2 : 4; }

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::vector<std::string> words(std::string_view line) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
        const std::size_t start = i;
        while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
        if (i > start) out.emplace_back(line.substr(start, i - start));
    }
    return out;
}

std::string hex_address(std::uint64_t a) { return fmt::format("0x{:x}", a); }

// The most a display command shows; bigger ranges go to a file with .writemem.
constexpr std::uint64_t display_limit = 1 << 20;

// A range after an address: "L COUNT", "LCOUNT", "L?COUNT", "L? COUNT" (COUNT in units), or an end
// address (exclusive of nothing: WinDbg's end is inclusive). Returns the count of units.
std::uint64_t range_count(const std::vector<std::string>& args, std::size_t at, std::uint64_t start, unsigned unit,
                          std::uint64_t fallback, bool (*parse)(std::string_view, std::uint64_t&)) {
    if (args.size() <= at) return fallback;
    std::string first = args[at];
    std::uint64_t value = 0;
    if (first[0] == 'L' || first[0] == 'l') {
        std::string rest = first.substr(1);
        if (!rest.empty() && rest[0] == '?') rest.erase(0, 1);
        if (rest.empty()) {
            if (args.size() <= at + 1) unusable("a range needs a count after L");
            rest = args[at + 1];
            if (args.size() > at + 2) unusable("unexpected '" + args[at + 2] + "' after the range");
        } else if (args.size() > at + 1) {
            unusable("unexpected '" + args[at + 1] + "' after the range");
        }
        if (!parse(rest, value)) unusable("'" + rest + "' is not a count");
        if (value == 0) unusable("a range of zero");
        return value;
    }
    if (args.size() > at + 1) unusable("unexpected '" + args[at + 1] + "' after the range");
    if (!parse(first, value)) unusable("'" + first + "' is neither a range (L COUNT) nor an end address");
    if (value < start) unusable("the end address is below the start");
    return (value - start) / unit + 1;
}

bool parse_into(std::string_view text, std::uint64_t& out) {
    const auto v = parse_number(text);
    if (!v) return false;
    out = *v;
    return true;
}

std::string explain(std::error_code ec) {
    if (ec == net::session_errc::closed) return ec.message() + " (the target is unreachable or was lost)";
    return ec.message();
}

// The exit status a client error deserves.
int status_for(std::error_code ec) {
    if (ec.category() == kd::ntstatus_category() || ec == kd::client_errc::short_transfer ||
        ec == kd::client_errc::bad_reply)
        return status_target_failed;
    return status_unusable;
}

std::string machine_name(std::uint16_t machine) {
    switch (machine) {
    case 0x8664: return "x64";
    case 0x014C: return "x86";
    case 0xAA64: return "ARM64";
    case 0x01C4: return "ARM";
    }
    return fmt::format("machine {:#x}", machine);
}

}  // namespace

std::vector<std::string> console::split_commands(std::string_view text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto end = std::min(text.find(';', start), text.size());
        auto piece = text.substr(start, end - start);
        while (!piece.empty() && std::isspace(static_cast<unsigned char>(piece.front()))) piece.remove_prefix(1);
        while (!piece.empty() && std::isspace(static_cast<unsigned char>(piece.back()))) piece.remove_suffix(1);
        if (!piece.empty()) out.emplace_back(piece);
        start = end + 1;
    }
    return out;
}

std::string console::help() {
    return "Commands (WinDbg's names; numbers are hexadecimal unless 0n..., addresses as fffff800`00001000,\n"
           "0x..., or @register; a range is L COUNT, L?COUNT or an end address):\n"
           "  vertarget                      the target's version and kernel base\n"
           "  r, r REG, r REG=VALUE          show the registers, one, or set one\n"
           "  db/dd/dq ADDRESS [RANGE]       show virtual memory as bytes, dwords, qwords\n"
           "  !db/!dd/!dq ADDRESS [RANGE]    the same, physical memory\n"
           "  eb/ed/eq ADDRESS VALUE...      write virtual memory (!eb/!ed/!eq: physical)\n"
           "  .writemem [/p] FILE ADDRESS RANGE\n"
           "                                 save memory (with /p physical) to a file\n"
           "  rdmsr MSR, wrmsr MSR VALUE     model-specific registers\n"
           "  ib/iw/id PORT, ob/ow/od PORT VALUE\n"
           "                                 I/O ports\n"
           "  bp ADDRESS, bl, bc N|*         set, list, clear breakpoints\n"
           "  g                              continue\n"
           "  t, p                           one instruction (trace; p is the same: no symbols here)\n"
           "  wait                           wait until the target stops\n"
           "  .breakin                       break in (Ctrl+C at the prompt does too)\n"
           "  .reboot                        reboot the target\n"
           "  q                              quit, leaving the target as it is\n"
           "  .detach                        let the target run, and quit\n"
           "  ?, help                        this list\n";
}

std::string console::describe_stop(const kd::stop_report& stop) {
    const auto& h = stop.header;
    if (h.new_state == kd::state_change::load_symbols) {
        const std::string path(stop.data.begin(), std::find(stop.data.begin(), stop.data.end(), 0));
        return fmt::format("{} {} at {}\n", h.load_symbols.unload ? "Unload" : "Load", path,
                           format_address(h.load_symbols.base_of_dll));
    }
    if (h.new_state != kd::state_change::exception)
        return fmt::format("State change {:#x} at {}\n", h.new_state, format_address(h.program_counter));
    const auto code = h.exception.code;
    std::string what;
    if (code == kd::status::breakpoint) what = "Break instruction exception";
    else if (code == kd::status::single_step) what = "Single step exception";
    else if (const auto name = kd::status_name(code); !name.empty()) what = std::string(name);
    else what = "Exception";
    return fmt::format("{} - code {:08x} ({}) at {}\n", what, code, h.exception.first_chance ? "first chance" : "second chance",
                       format_address(h.program_counter));
}

int console::attach(bool break_in_now) {
    command_ = "attach";
    try {
        std::error_code ec;
        // A stopped target reports its stop after the handshake; give it a moment to.
        const auto patience = std::min<std::chrono::milliseconds>(timeout_, std::chrono::milliseconds(1500));
        client_.wait_state_change(patience, ec);
        if (ec == net::session_errc::timed_out && break_in_now) client_.break_in(ec);
        if (ec == net::session_errc::timed_out && !break_in_now) return status_ok;  // running: fine
        if (ec) fail("the target did not stop", ec);
        return status_ok;
    } catch (const command_error& e) {
        return report(out_, command_, e);
    }
}

int console::run(std::string_view line) {
    const auto args_all = words(line);
    if (args_all.empty()) return status_ok;
    command_ = std::string(line);
    const std::string name = lower(args_all[0]);
    const std::vector<std::string> args(args_all.begin() + 1, args_all.end());
    try {
        if (name == "?" || name == "help") done(help(), json{{"command", command_}, {"ok", true}, {"help", help()}});
        else if (name == "vertarget") version();
        else if (name == "r") registers(args);
        else if (name == "db" || name == "dd" || name == "dq" || name == "!db" || name == "!dd" || name == "!dq") display(name, args);
        else if (name == "eb" || name == "ed" || name == "eq" || name == "!eb" || name == "!ed" || name == "!eq") enter(name, args);
        else if (name == ".writemem") write_memory_to_file(args);
        else if (name == "rdmsr") read_msr(args);
        else if (name == "wrmsr") write_msr(args);
        else if (name == "ib" || name == "iw" || name == "id") port_in(name, args);
        else if (name == "ob" || name == "ow" || name == "od") port_out(name, args);
        else if (name == "bp") set_breakpoint(args);
        else if (name == "bl") list_breakpoints();
        else if (name == "bc") clear_breakpoints(args);
        else if (name == "g") go(false, name);
        else if (name == "t" || name == "p") go(true, name);
        else if (name == "wait") wait_for_stop(name);
        else if (name == ".breakin") break_in();
        else if (name == ".reboot") reboot();
        else if (name == "q") {
            quitting_ = true;
            done("", json{{"command", command_}, {"ok", true}});
        } else if (name == ".detach") detach();
        else unusable("unknown command '" + args_all[0] + "' (? lists the commands)");
        return status_ok;
    } catch (const command_error& e) {
        return report(out_, command_, e);
    }
}

void console::done(std::string_view text, json object) { out_.emit(text, object); }

void console::fail(std::string_view what, std::error_code ec) {
    throw command_error{status_for(ec), fmt::format("{}: {}", what, explain(ec))};
}

std::uint64_t console::value_of(std::string_view text) {
    if (!text.empty() && text[0] == '@') {
        const auto reg = kd::amd64::find_register(text.substr(1));
        if (!reg) unusable("no register called '" + std::string(text.substr(1)) + "'");
        std::error_code ec;
        const auto context = client_.get_context(ec);
        if (ec) fail("reading the registers", ec);
        return context.get(*reg);
    }
    const auto v = parse_number(text);
    if (!v) unusable("'" + std::string(text) + "' is not a number or an address");
    return *v;
}

void console::version() {
    std::error_code ec;
    const auto v = client_.get_version(ec);
    if (ec) fail("GetVersion", ec);
    const char* build = v.major_version == 0xF ? "Free" : v.major_version == 0xC ? "Checked" : "";
    done(fmt::format("Windows kernel, build {} {}{}{}, KD protocol {}\n"
                     "Kernel base = {} PsLoadedModuleList = {}\nDebugger data list = {}\n",
                     v.minor_version, *build ? build : fmt::format("(major {:#x})", v.major_version).c_str(), " ",
                     machine_name(v.machine_type), v.protocol_version, format_address(v.kern_base),
                     format_address(v.ps_loaded_module_list), format_address(v.debugger_data_list)),
         json{{"command", command_},
              {"ok", true},
              {"major_version", v.major_version},
              {"build", v.minor_version},
              {"protocol_version", v.protocol_version},
              {"machine", machine_name(v.machine_type)},
              {"kern_base", hex_address(v.kern_base)},
              {"ps_loaded_module_list", hex_address(v.ps_loaded_module_list)},
              {"debugger_data_list", hex_address(v.debugger_data_list)}});
}

void console::registers(const std::vector<std::string>& args) {
    // "r rax=5", "r rax = 5", "r rax =5": join what follows the command.
    std::string joined;
    for (const auto& a : args) joined += a;
    std::error_code ec;
    auto context = client_.get_context(ec);
    if (ec) fail("reading the registers", ec);
    if (joined.empty()) {
        const auto r = [&](const kd::amd64::register_info& i) { return context.get(i); };
        using namespace kd::amd64;
        std::string text = fmt::format(
            "rax={:016x} rbx={:016x} rcx={:016x}\nrdx={:016x} rsi={:016x} rdi={:016x}\n"
            "rip={:016x} rsp={:016x} rbp={:016x}\n r8={:016x}  r9={:016x} r10={:016x}\n"
            "r11={:016x} r12={:016x} r13={:016x}\nr14={:016x} r15={:016x}\n"
            "cs={:04x}  ss={:04x}  ds={:04x}  es={:04x}  fs={:04x}  gs={:04x}             efl={:08x}\n",
            r(rax), r(rbx), r(rcx), r(rdx), r(rsi), r(rdi), r(rip), r(rsp), r(rbp), r(r8), r(r9), r(r10), r(r11), r(r12),
            r(r13), r(r14), r(r15), r(seg_cs), r(seg_ss), r(seg_ds), r(seg_es), r(seg_fs), r(seg_gs), r(eflags));
        json regs;
        for (const auto& i : kd::amd64::registers) regs[std::string(i.name)] = hex_address(context.get(i));
        return done(text, json{{"command", command_}, {"ok", true}, {"registers", regs}});
    }
    const auto eq = joined.find('=');
    const std::string name = joined.substr(0, eq);
    const auto reg = kd::amd64::find_register(name);
    if (!reg) unusable("no register called '" + name + "'");
    if (eq == std::string::npos)
        return done(fmt::format("{}={:0{}x}\n", reg->name, context.get(*reg), reg->size * 2),
                    json{{"command", command_}, {"ok", true}, {"register", reg->name}, {"value", hex_address(context.get(*reg))}});
    const auto value = value_of(joined.substr(eq + 1));
    if (reg->size < 8 && value >> (8 * reg->size)) unusable(fmt::format("{} is {} bytes wide", reg->name, reg->size));
    context.set(*reg, value);
    client_.set_context(context, ec);
    if (ec) fail("writing the registers", ec);
    done("", json{{"command", command_}, {"ok", true}, {"register", reg->name}, {"value", hex_address(value)}});
}

void console::display(std::string_view name, const std::vector<std::string>& args) {
    const auto [space, unit] = memory_command_of(name);
    const bool physical = space == kd::memory_space::physical_memory;
    if (args.empty()) unusable(std::string(name) + " needs an address");
    const std::uint64_t address = value_of(args[0]);
    const std::uint64_t count = range_count(args, 1, address, unit, 0x80 / unit, parse_into);
    if (count > display_limit / unit)
        unusable(fmt::format("{:#x} bytes is more than {} shows ({:#x} at most); .writemem saves big ranges to a file",
                             count * unit, name, display_limit));
    const std::uint64_t size = count * unit;
    std::error_code ec;
    const auto bytes = client_.read_memory(space, address, size, ec);
    if (ec && bytes.empty()) fail(fmt::format("reading memory at {}", format_address(address)), ec);
    std::string text;
    json values = json::array();
    for (std::uint64_t line = 0; line < size; line += 16) {
        text += fmt::format("{}  ", format_address(address + line));
        std::string ascii;
        for (std::uint64_t i = line; i < std::min(size, line + 16); i += unit) {
            const bool known = i + unit <= bytes.size();
            std::uint64_t v = 0;
            for (unsigned b = 0; known && b < unit; ++b) v |= std::uint64_t{bytes[i + b]} << (8 * b);
            if (unit == 1) {
                text += known ? fmt::format("{:02x}", v) : "??";
                text += i - line == 7 && i + 1 < std::min(size, line + 16) ? "-" : " ";
                ascii += known && v >= 0x20 && v < 0x7F ? static_cast<char>(v) : '.';
            } else if (unit == 4) {
                text += known ? fmt::format("{:08x} ", v) : "???????? ";
            } else {
                text += known ? fmt::format("{:08x}`{:08x} ", v >> 32, v & 0xFFFFFFFF) : "????????`???????? ";
            }
            if (known) values.push_back(v);
        }
        if (unit == 1) text += std::string(3 * (16 - std::min<std::uint64_t>(16, size - line)), ' ') + " " + ascii;
        while (!text.empty() && text.back() == ' ') text.pop_back();
        text += '\n';
    }
    json object{{"command", command_},
                {"ok", !ec},
                {"space", physical ? "physical" : "virtual"},
                {"address", hex_address(address)},
                {"unit", unit},
                {"values", values}};
    if (ec) {
        object["status"] = status_target_failed;
        object["error"] = fmt::format("only {:#x} of {:#x} bytes could be read: {}", bytes.size(), size, ec.message());
        out_.emit(text, object);
        throw command_error{status_target_failed, object["error"].get<std::string>()};
    }
    done(text, object);
}

void console::enter(std::string_view name, const std::vector<std::string>& args) {
    const auto [space, unit] = memory_command_of(name);
    if (args.size() < 2) unusable(std::string(name) + " needs an address and at least one value");
    const std::uint64_t address = value_of(args[0]);
    std::vector<std::uint8_t> bytes;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const auto v = parse_number(args[i]);
        if (!v) unusable("'" + args[i] + "' is not a number");
        if (unit < 8 && *v >> (8 * unit)) unusable(fmt::format("{} does not fit in {} byte{}", args[i], unit, unit > 1 ? "s" : ""));
        for (unsigned b = 0; b < unit; ++b) bytes.push_back(static_cast<std::uint8_t>(*v >> (8 * b)));
    }
    std::error_code ec;
    const auto written = client_.write_memory(space, address, bytes, ec);
    if (ec) fail(fmt::format("writing memory at {} ({:#x} of {:#x} bytes written)", format_address(address), written, bytes.size()), ec);
    done("", json{{"command", command_}, {"ok", true}, {"address", hex_address(address)}, {"bytes_written", written}});
}

void console::write_memory_to_file(const std::vector<std::string>& all) {
    std::vector<std::string> args = all;
    bool physical = false;
    if (!args.empty() && lower(args[0]) == "/p") {
        physical = true;
        args.erase(args.begin());
    }
    if (args.size() < 3) unusable(".writemem needs a file, an address and a range: .writemem [/p] FILE ADDRESS L?SIZE");
    const std::string file = args[0];
    const std::uint64_t address = value_of(args[1]);
    const std::uint64_t size = range_count(args, 2, address, 1, 0, parse_into);
    // The memory of a machine: readable by its owner only, and never through a planted symlink.
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) unusable(fmt::format("cannot create {}: {}", file, std::strerror(errno)));
    progress_meter progress(".writemem", size);
    std::uint64_t on_disk = 0;
    int write_errno = 0;
    const auto started = std::chrono::steady_clock::now();
    std::error_code ec;
    client_.read_memory(physical ? kd::memory_space::physical_memory : kd::memory_space::virtual_memory, address, size,
                        [&](std::uint64_t, std::span<const std::uint8_t> piece) {
                            if (write_errno) return;
                            std::size_t put = 0;
                            while (put < piece.size()) {
                                const auto n = ::write(fd, piece.data() + put, piece.size() - put);
                                if (n < 0 && errno == EINTR) continue;
                                if (n < 0) {
                                    write_errno = errno;
                                    return;
                                }
                                put += static_cast<std::size_t>(n);
                            }
                            on_disk += piece.size();
                            progress.update(on_disk);
                        },
                        ec);
    progress.finish();
    ::close(fd);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const double mb_per_s = seconds > 0 ? static_cast<double>(on_disk) / seconds / 1e6 : 0;
    if (write_errno)
        unusable(fmt::format("writing {}: {} ({:#x} bytes kept)", file, std::strerror(write_errno), on_disk));
    if (ec) {
        throw command_error{status_for(ec),
                            fmt::format("reading {} memory at {} failed after {:#x} of {:#x} bytes: {}; {} keeps the {:#x} "
                                        "bytes read",
                                        physical ? "physical" : "virtual", format_address(address + on_disk), on_disk,
                                        size, explain(ec), file, on_disk)};
    }
    done(fmt::format("Writing {:x} bytes to {}: {:.1f} MiB in {:.2f} s, {:.1f} MB/s\n", size, file,
                     static_cast<double>(size) / (1 << 20), seconds, mb_per_s),
         json{{"command", command_},
              {"ok", true},
              {"file", file},
              {"space", physical ? "physical" : "virtual"},
              {"address", hex_address(address)},
              {"bytes", on_disk},
              {"seconds", seconds},
              {"mb_per_s", mb_per_s}});
}

void console::read_msr(const std::vector<std::string>& args) {
    if (args.size() != 1) unusable("rdmsr needs one MSR number");
    const auto msr = value_of(args[0]);
    if (msr > 0xFFFFFFFF) unusable("an MSR number is 32 bits");
    std::error_code ec;
    const auto value = client_.read_msr(static_cast<std::uint32_t>(msr), ec);
    if (ec) fail(fmt::format("reading MSR {:x}", msr), ec);
    done(fmt::format("msr[{:x}] = {}\n", msr, format_address(value)),
         json{{"command", command_}, {"ok", true}, {"msr", hex_address(msr)}, {"value", hex_address(value)}});
}

void console::write_msr(const std::vector<std::string>& args) {
    if (args.size() != 2) unusable("wrmsr needs an MSR number and a value");
    const auto msr = value_of(args[0]);
    if (msr > 0xFFFFFFFF) unusable("an MSR number is 32 bits");
    const auto value = value_of(args[1]);
    std::error_code ec;
    client_.write_msr(static_cast<std::uint32_t>(msr), value, ec);
    if (ec) fail(fmt::format("writing MSR {:x}", msr), ec);
    done("", json{{"command", command_}, {"ok", true}, {"msr", hex_address(msr)}, {"value", hex_address(value)}});
}

void console::port_in(std::string_view name, const std::vector<std::string>& args) {
    const unsigned size = port_width(name);
    if (args.size() != 1) unusable(std::string(name) + " needs one port");
    const auto port = value_of(args[0]);
    std::error_code ec;
    const auto value = client_.read_io(port, size, ec);
    if (ec) fail(fmt::format("reading port {:x}", port), ec);
    done(fmt::format("{:08x}: {:0{}x}\n", port, value, size * 2),
         json{{"command", command_}, {"ok", true}, {"port", hex_address(port)}, {"size", size}, {"value", hex_address(value)}});
}

void console::port_out(std::string_view name, const std::vector<std::string>& args) {
    const unsigned size = port_width(name);
    if (args.size() != 2) unusable(std::string(name) + " needs a port and a value");
    const auto port = value_of(args[0]);
    const auto value = value_of(args[1]);
    if (value >> (8 * size)) unusable(fmt::format("{} does not fit in {} byte{}", args[1], size, size > 1 ? "s" : ""));
    std::error_code ec;
    client_.write_io(port, size, static_cast<std::uint32_t>(value), ec);
    if (ec) fail(fmt::format("writing port {:x}", port), ec);
    done("", json{{"command", command_}, {"ok", true}, {"port", hex_address(port)}, {"size", size}, {"value", hex_address(value)}});
}

void console::set_breakpoint(const std::vector<std::string>& args) {
    if (args.size() != 1) unusable("bp needs one address");
    const auto address = value_of(args[0]);
    for (const auto& [number, b] : breakpoints_)
        if (b.address == address) unusable(fmt::format("breakpoint {} is already at {}", number, format_address(address)));
    std::error_code ec;
    const auto handle = client_.write_breakpoint(address, ec);
    if (ec) fail(fmt::format("setting a breakpoint at {}", format_address(address)), ec);
    unsigned number = 0;
    while (breakpoints_.contains(number)) ++number;
    breakpoints_[number] = {address, handle};
    done(fmt::format("breakpoint {} at {}\n", number, format_address(address)),
         json{{"command", command_}, {"ok", true}, {"breakpoint", number}, {"address", hex_address(address)}});
}

void console::list_breakpoints() {
    std::string text;
    json list = json::array();
    for (const auto& [number, b] : breakpoints_) {
        text += fmt::format(" {} e {}\n", number, format_address(b.address));
        list.push_back(json{{"breakpoint", number}, {"address", hex_address(b.address)}});
    }
    done(text, json{{"command", command_}, {"ok", true}, {"breakpoints", list}});
}

void console::clear_breakpoints(const std::vector<std::string>& args) {
    if (args.size() != 1) unusable("bc needs a breakpoint number or *");
    std::vector<unsigned> numbers;
    if (args[0] == "*") {
        for (const auto& [number, b] : breakpoints_) numbers.push_back(number);
    } else {
        const auto n = parse_number(args[0]);
        if (!n || !breakpoints_.contains(static_cast<unsigned>(*n))) unusable("no breakpoint " + args[0] + " (bl lists them)");
        numbers.push_back(static_cast<unsigned>(*n));
    }
    for (const auto number : numbers) {
        std::error_code ec;
        client_.restore_breakpoint(breakpoints_[number].handle, ec);
        if (ec) fail(fmt::format("clearing breakpoint {}", number), ec);
        breakpoints_.erase(number);
    }
    done("", json{{"command", command_}, {"ok", true}, {"cleared", numbers}});
}

void console::go(bool trace, std::string_view name) {
    std::error_code ec;
    client_.continue_running(kd::status::dbg_continue, trace, ec);
    if (ec) fail(trace ? "stepping" : "continuing", ec);
    if (!trace) return done("", json{{"command", command_}, {"ok", true}});
    const auto stop = client_.wait_state_change(timeout_, ec);
    if (ec == net::session_errc::timed_out)
        throw command_error{status_target_failed, fmt::format("{}: the target did not stop after one instruction (it may not "
                                                              "support tracing; .breakin stops it)",
                                                              name)};
    if (ec) fail("waiting for the step", ec);
    done("", json{{"command", command_}, {"ok", true}, {"stop", describe_stop(stop)}, {"pc", hex_address(stop.header.program_counter)}});
}

void console::wait_for_stop(std::string_view name) {
    std::error_code ec;
    const auto stop = client_.wait_state_change(timeout_, ec);
    if (ec == net::session_errc::timed_out)
        unusable(fmt::format("{}: the target did not stop within {} s", name, std::chrono::duration<double>(timeout_).count()));
    if (ec) fail("waiting for the target", ec);
    done("", json{{"command", command_}, {"ok", true}, {"stop", describe_stop(stop)}, {"pc", hex_address(stop.header.program_counter)}});
}

void console::break_in() {
    std::error_code ec;
    const auto stop = client_.break_in(ec);
    if (ec) fail("breaking in", ec);
    done("", json{{"command", command_}, {"ok", true}, {"stop", describe_stop(stop)}, {"pc", hex_address(stop.header.program_counter)}});
}

void console::reboot() {
    std::error_code ec;
    client_.reboot(ec);
    if (ec) fail("rebooting", ec);
    breakpoints_.clear();  // a rebooted kernel has none
    done("", json{{"command", command_}, {"ok", true}});
}

void console::detach() {
    std::error_code ec;
    client_.continue_running(kd::status::dbg_continue, false, ec);
    if (ec && ec != kd::client_errc::target_running) fail("letting the target run", ec);
    quitting_ = true;
    done("", json{{"command", command_}, {"ok", true}});
}

}  // namespace kdcom::tools::kd_console
