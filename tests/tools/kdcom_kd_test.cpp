// kdcom-kd as a user runs it: against kdcom-sim --serve (the fake kernel behind the bridge) over
// each kind of address, every command checked against the fake kernel's memory image; .writemem /p
// of 64 MiB compared byte for byte; a target that vanishes mid-dump; bad commands, addresses and
// ranges; commands from standard input; the interactive prompt driven through a pty.
#include <gtest/gtest.h>

#include <poll.h>
#include <pty.h>
#include <sys/wait.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <asio/ip/tcp.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kdcom/guest/memory_image.hpp"
#include "kdcom/kd/debug_io.hpp"
#include "kdcom/kd/state_change.hpp"
#include "kdcom/kd/status.hpp"
#include "kdcom/net/open_link.hpp"
#include "kdcom/net/session.hpp"
#include "support/net_pair.hpp"
#include "support/tool_process.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr std::uint64_t kern_base = 0xfffff80000000000u;
constexpr std::uint64_t image_mib = 64;

// kdcom-sim --serve at an address of `kind`; `address` is where kdcom-kd finds it.
struct served_target {
    scratch_dir dir;
    std::string address;
    std::unique_ptr<tool_process> process;

    explicit served_target(const std::string& kind) {
        std::string serve;
        if (kind == "unix") {
            serve = "unix-listen://" + dir.path + "/kd.sock";
            address = "unix://" + dir.path + "/kd.sock";
        } else if (kind == "tcp") {
            asio::io_context io;
            asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
            const auto port = std::to_string(probe.local_endpoint().port());
            probe.close();
            serve = "tcp-listen://127.0.0.1:" + port;
            address = "tcp://127.0.0.1:" + port;
        } else {
            serve = address = "fifo://" + dir.path + "/kd";
        }
        process = std::make_unique<tool_process>(KDCOM_SIM_PATH, std::vector<std::string>{"--serve", serve, "--dump", std::to_string(image_mib)},
                                                 dir.path + "/serve.txt");
        if (!process->wait_for_output("serving KDCOM")) throw std::runtime_error("kdcom-sim --serve: " + process->output());
    }
};

command_result kd(const std::string& address, const std::string& commands, const std::string& more = "") {
    return run_command(std::string(KDCOM_KD_PATH) + " " + address + " -c '" + commands + "' " + more);
}

// The JSON objects kdcom-kd printed, commands' results only (not events).
std::vector<json> results(const std::string& out) {
    std::vector<json> r;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
        if (line.empty() || line[0] != '{') continue;
        auto j = json::parse(line);
        if (j.contains("command")) r.push_back(j);
    }
    return r;
}

std::vector<std::uint8_t> image(std::uint64_t at, std::size_t n) {
    static const guest::memory_image reference(image_mib << 20);
    std::vector<std::uint8_t> out(n);
    reference.read(at, out);
    return out;
}

class KdcomKd : public ::testing::TestWithParam<const char*> {};

TEST_P(KdcomKd, EveryCommandAgainstTheFakeKernel) {
    served_target target(GetParam());
    const std::string commands =
        "vertarget; r; r rax=1234; r rax; db fffff800`00001000 L20; dd 0xfffff80000002000 L4; dq fffff800`00002000 "
        "fffff800`0000200f; !db 100 L10; !dd 100 L4; !dq 100 L2; eb fffff800`00003000 11 22 33; db fffff800`00003000 L3; "
        "ed fffff800`00003000 aabbccdd; dd fffff800`00003000 L1; eq fffff800`00003000 1122334455667788; !eq 3008 99; "
        "!dq 3000 L2; rdmsr c0000082; wrmsr c0000084 4700; rdmsr c0000084; ob 80 5a; ib 80; ow 80 1234; iw 80; "
        "od 80 89abcdef; id 80; bp fffff800`00004000; bl; t; g; wait; bc 0; bl; db @rip L1; .reboot; .breakin; ?; q";
    const auto r = kd(target.address, commands, "--json");
    ASSERT_EQ(r.status, 0) << r.out;
    const auto all = results(r.out);
    ASSERT_EQ(all.size(), 38u) << r.out;
    for (const auto& j : all) EXPECT_TRUE(j["ok"].get<bool>()) << j.dump();
    auto at = [&](std::size_t i) { return all.at(i); };
    auto values = [&](std::size_t i) { return at(i)["values"].get<std::vector<std::uint64_t>>(); };
    auto bytes_of = [](const std::vector<std::uint8_t>& b, unsigned unit) {
        std::vector<std::uint64_t> v;
        for (std::size_t i = 0; i + unit <= b.size(); i += unit) {
            std::uint64_t x = 0;
            for (unsigned k = 0; k < unit; ++k) x |= std::uint64_t{b[i + k]} << (8 * k);
            v.push_back(x);
        }
        return v;
    };
    EXPECT_EQ(at(0)["machine"], "x64");
    EXPECT_EQ(at(0)["kern_base"], "0xfffff80000000000");
    EXPECT_EQ(at(1)["registers"]["rip"], "0xfffff80000001000");
    EXPECT_EQ(at(3)["value"], "0x1234") << "r rax=1234 set it (hexadecimal, as in WinDbg)";
    EXPECT_EQ(values(4), bytes_of(image(0x1000, 0x20), 1));
    EXPECT_EQ(values(5), bytes_of(image(0x2000, 16), 4));
    EXPECT_EQ(values(6), bytes_of(image(0x2000, 16), 8)) << "an end address: inclusive, two qwords";
    EXPECT_EQ(values(7), bytes_of(image(0x100, 0x10), 1));
    EXPECT_EQ(values(8), bytes_of(image(0x100, 16), 4));
    EXPECT_EQ(values(9), bytes_of(image(0x100, 16), 8));
    EXPECT_EQ(values(11), (std::vector<std::uint64_t>{0x11, 0x22, 0x33}));
    EXPECT_EQ(values(13), (std::vector<std::uint64_t>{0xaabbccdd}));
    EXPECT_EQ(values(16), (std::vector<std::uint64_t>{0x1122334455667788, 0x99}));
    EXPECT_EQ(at(17)["value"], "0xfffff80000003000") << "IA32_LSTAR";
    EXPECT_EQ(at(19)["value"], "0x4700");
    EXPECT_EQ(at(21)["value"], "0x5a");
    EXPECT_EQ(at(23)["value"], "0x1234");
    EXPECT_EQ(at(25)["value"], "0x89abcdef");
    EXPECT_EQ(at(27)["breakpoints"].size(), 1u);
    EXPECT_NE(at(28)["stop"].get<std::string>().find("Single step exception - code 80000004"), std::string::npos);
    EXPECT_EQ(at(30)["pc"], "0xfffff80000004000") << "g ran into the breakpoint";
    EXPECT_EQ(at(32)["breakpoints"].size(), 0u);
    EXPECT_EQ(values(33), bytes_of(image(0x4000, 1), 1)) << "the breakpoint's byte is restored";
    EXPECT_NE(r.out.find("fake kernel: rebooted"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Addresses, KdcomKd, ::testing::Values("unix", "tcp", "fifo"));

TEST(KdcomKdDump, WritememOfPhysicalMemoryIsTheImageByteForByte) {
    served_target target("unix");
    const std::string file = target.dir.path + "/memory.bin";
    const auto r = kd(target.address, ".writemem /p " + file + " 0 L?" + fmt::format("{:x}", image_mib << 20) + "; g");
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("MB/s"), std::string::npos) << r.out;
    ASSERT_EQ(std::filesystem::file_size(file), image_mib << 20);
    EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)
        << "a machine's memory is its owner's to read";
    std::ifstream in(file, std::ios::binary);
    std::vector<std::uint8_t> chunk(1 << 20);
    for (std::uint64_t at = 0; at < (image_mib << 20); at += chunk.size()) {
        in.read(reinterpret_cast<char*>(chunk.data()), static_cast<std::streamsize>(chunk.size()));
        ASSERT_EQ(chunk, image(at, chunk.size())) << "the MiB at " << at;
    }
}

TEST(KdcomKdDump, ATargetThatVanishesMidDumpLeavesTheBytesReadAndExitStatus2) {
    served_target target("unix");
    const std::string file = target.dir.path + "/memory.bin";
    tool_process dump(KDCOM_KD_PATH,
                      {target.address, "-c", ".writemem /p " + file + " 0 L?" + fmt::format("{:x}", image_mib << 20)},
                      target.dir.path + "/kd.txt");
    for (int i = 0; i < 1000 && (!std::filesystem::exists(file) || std::filesystem::file_size(file) < (4 << 20)); ++i)
        std::this_thread::sleep_for(5ms);
    ::kill(target.process->pid, SIGKILL);
    EXPECT_EQ(dump.wait_exit(), 2) << dump.output();
    const auto out = dump.output();
    EXPECT_NE(out.find("keeps the"), std::string::npos) << out;
    EXPECT_NE(out.find("unreachable or was lost"), std::string::npos) << out;
    const auto kept = std::filesystem::file_size(file);
    EXPECT_GT(kept, 0u);
    EXPECT_LT(kept, image_mib << 20);
    std::vector<std::uint8_t> bytes(kept);
    std::ifstream(file, std::ios::binary).read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(kept));
    EXPECT_EQ(bytes, image(0, kept)) << "what was kept is what was read";
}

TEST(KdcomKdInput, BadCommandsAddressesAndRangesAreRefusedWithAClearMessage) {
    served_target target("unix");
    struct case_ {
        const char* command;
        int status;
        const char* message;
    };
    const case_ cases[] = {
        {"frobnicate", 2, "unknown command 'frobnicate'"},
        {"db zzz", 2, "'zzz' is not a number or an address"},
        {"db 0 L0", 2, "a range of zero"},
        {"db 0 L", 2, "a range needs a count after L"},
        {"db fffff800`00001000 Lfffffff", 2, "is more than db shows"},
        {"db 10 5", 2, "the end address is below the start"},
        {"eb 0 100", 2, "100 does not fit in 1 byte"},
        {"r nosuchreg", 2, "no register called 'nosuchreg'"},
        {"bc 7", 2, "no breakpoint 7"},
        {".writemem", 2, ".writemem needs a file"},
        {"rdmsr 123456789", 2, "an MSR number is 32 bits"},
        {"!db ffffffffffff L4", 1, "STATUS_UNSUCCESSFUL"},
        {"rdmsr 12345", 1, "STATUS_NO_SUCH_DEVICE"},
    };
    for (const auto& c : cases) {
        const auto r = kd(target.address, c.command);
        EXPECT_EQ(r.status, c.status) << c.command << "\n" << r.out;
        EXPECT_NE(r.out.find(c.message), std::string::npos) << c.command << "\n" << r.out;
    }
    // A bad command stops a script: what follows it does not run.
    const auto r = kd(target.address, "bogus; vertarget", "--json");
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(results(r.out).size(), 1u) << r.out;
}

TEST(KdcomKdInput, AnUnreachableTargetIsExitStatus2WithTheReason) {
    scratch_dir dir;
    auto r = kd("unix://" + dir.path + "/missing.sock", "vertarget");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("No such file or directory"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("cannot reach the target"), std::string::npos) << r.out;
    r = kd("serial:///dev/nonexistent", "vertarget");
    EXPECT_EQ(r.status, 2) << r.out;
    r = kd("nonsense://x", "vertarget");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("invalid target address"), std::string::npos) << r.out;
}

TEST(KdcomKdInput, NoBreakAttachesToARunningTargetWithoutStoppingIt) {
    served_target target("unix");
    ASSERT_EQ(kd(target.address, "g").status, 0);  // leave it running
    auto r = kd(target.address, "vertarget", "--no-break");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("the target is running (break in first)"), std::string::npos) << r.out;
    r = kd(target.address, ".breakin; vertarget; g", "--no-break");
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("Kernel base = fffff800`00000000"), std::string::npos) << r.out;
}

// A target's DbgPrint text is the target's to choose: escape sequences in it reach the terminal as
// letters, while its lines stay lines.
TEST(KdcomKdInput, WhatATargetPrintsReachesTheTerminalEscaped) {
    scratch_dir dir;
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    kdcom::failure error;
    const auto listen = transport::parse_address("unix-listen://" + dir.path + "/t.sock", error);
    ASSERT_TRUE(listen) << error.message();
    auto link = net::open_link(io.get_executor(), *listen, role::target, error);
    ASSERT_TRUE(link) << error.message();
    auto target = net::session::create(std::move(link), {.role = role::target});
    // When the debugger comes: a print with a window-title sequence, then a stop.
    target->set_notice_handler([&](const net::session_notice& n) {
        if (n.kind != net::session_notice::what::stream_opened) return;
        const std::string text = "\x1b]0;owned\x07hello\nworld\n";
        kd::debug_io_header d;
        d.length_of_string = static_cast<std::uint32_t>(text.size());
        std::uint8_t dh[kd::debug_io_header_size];
        kd::encode_debug_io(d, dh);
        target->async_send(wire::packet_type::debug_io, dh, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()},
                           [](std::error_code) {});
        kd::state_change_header h;
        h.exception.code = kd::status::breakpoint;
        std::uint8_t body[kd::state_change_header_size];
        kd::encode_state_change(h, body);
        target->async_send(wire::packet_type::state_change64, body, {}, [](std::error_code) {});
    });
    target->start();
    std::thread runner([&] { io.run(); });
    const auto r = kd("unix://" + dir.path + "/t.sock", "wait", "--no-break --timeout 5");
    asio::post(io, [&] { target->close(); });
    work.reset();
    runner.join();
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find('\x07'), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\\x1b]0;owned\\x07hello\nworld\n"), std::string::npos) << r.out;
}

TEST(KdcomKdInput, CommandsFromStandardInput) {
    served_target target("unix");
    const auto r = run_command("printf 'vertarget\\ndb fffff800`00001000 L4\\n\\nq\\n' | " + std::string(KDCOM_KD_PATH) +
                               " " + target.address);
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("Kernel base = fffff800`00000000"), std::string::npos) << r.out;
    const auto b = image(0x1000, 4);
    EXPECT_NE(r.out.find(fmt::format("fffff800`00001000  {:02x} {:02x} {:02x} {:02x}", b[0], b[1], b[2], b[3])),
              std::string::npos)
        << r.out;
}

// The prompt on a terminal: a command, Ctrl+C breaking in while the target runs, q.
TEST(KdcomKdInput, TheInteractivePromptThroughAPty) {
    served_target target("unix");
    int master = -1;
    const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::execl(KDCOM_KD_PATH, KDCOM_KD_PATH, target.address.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    std::string seen;
    // Reads until `text` appears after offset `from` of what was seen.
    auto read_until = [&](const std::string& text, std::chrono::milliseconds limit, std::size_t from = 0) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (seen.find(text, from) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
            pollfd p{master, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            char buffer[4096];
            const auto n = ::read(master, buffer, sizeof buffer);
            if (n <= 0) break;
            seen.append(buffer, static_cast<std::size_t>(n));
        }
        return seen.find(text, from) != std::string::npos;
    };
    auto type = [&](const std::string& keys) { ASSERT_EQ(::write(master, keys.data(), keys.size()), static_cast<ssize_t>(keys.size())); };
    EXPECT_TRUE(read_until("kd> ", 10s)) << seen;
    type("vertarget\r");
    EXPECT_TRUE(read_until("Kernel base", 10s)) << seen;
    auto after_g = seen.size();
    type("g\r");
    EXPECT_TRUE(read_until("kd> ", 10s, after_g)) << seen;
    std::this_thread::sleep_for(200ms);
    const auto before_break = seen.size();
    type("\x03");  // Ctrl+C at the prompt: break in
    EXPECT_TRUE(read_until("Break instruction exception", 10s, before_break)) << seen;
    // And while a command waits.
    after_g = seen.size();
    type("g\r");
    EXPECT_TRUE(read_until("kd> ", 10s, after_g)) << seen;
    type("wait\r");
    std::this_thread::sleep_for(300ms);
    const auto before_second = seen.size();
    type("\x03");
    EXPECT_TRUE(read_until("Break instruction exception", 10s, before_second)) << seen;
    type("r rip\r");
    EXPECT_TRUE(read_until("rip=fffff80000001000", 10s, before_second)) << seen;
    type("q\r");
    int status = 0;
    for (int i = 0; i < 500 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) std::this_thread::sleep_for(10ms);
    if (::waitpid(pid, &status, WNOHANG) == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        FAIL() << "kdcom-kd did not quit at q\n" << seen;
    }
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << seen;
    ::close(master);
}

}  // namespace
