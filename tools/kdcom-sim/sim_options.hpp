// kdcom-sim's options, and what every part of it (the debugger checking reads, a kernel in a
// process of its own, a --serve target) derives from them the same way.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

namespace kdcom::tools {

struct sim_options {
    std::uint64_t dump_mib = 64;
    std::string faults = "loss=0.001,corrupt=0.0005,dup=0.001";
    std::string transport = "unix";
    unsigned rate = 0;
    unsigned seed = 1;
    bool fast_path = false;
    std::string capture;  // empty: a new file in the temp dir (default_capture_path())
    bool no_capture = false, force = false;
    bool separate = false;
    bool reboot_midway = false;  // the debugger reboots the target halfway through the dump
    std::string target;  // --target ADDR: only the simulated debugger, against the target there
    std::string serve;   // --serve ADDR: only the simulated target, serving KDCOM there
    std::string part, shm;  // --part kernel --shm NAME: the kernel process of --separate
};

inline constexpr std::uint64_t kern_base = 0xfffff80000000000u;

// The fake kernel's memory size: the dump's, at least 1 MiB. Every part derives it the same way,
// or reads differ.
inline std::uint64_t image_size(const sim_options& opt) { return std::max<std::uint64_t>(opt.dump_mib << 20, 1 << 20); }

}  // namespace kdcom::tools
