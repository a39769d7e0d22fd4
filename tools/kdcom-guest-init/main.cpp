// kdcom-guest-init: the fake kernel as the init process of a Linux guest in QEMU, attached to the
// kdcom host (kdcom-bridge --guest ivshmem:///PATH) through the ivshmem-doorbell PCI device. It is
// what scripts/check-qemu.sh boots: a static binary, the whole initramfs.
//
// Settings come from the kernel command line, which the kernel hands to init as environment
// variables: kdcom_image_mib (the fake kernel's memory, 64), kdcom_seed (its contents, 1). Lines
// it prints on the console (the guest's serial port) start with "kdcom-guest-init:"; the one
// with "attached" tells the host the guest is ready. A debugger's Reboot restarts the machine
// (the next boot asks the host for a new generation); anything that fails powers the machine off.
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "kdcom/guest/fake_kernel.hpp"
#include "kdcom/guest/kd_guest.h"
#include "kdcom/guest/memory_image.hpp"

namespace {

constexpr std::uint64_t kern_base = 0xfffff80000000000u;  // as kdcom-sim's debugger expects

std::uint64_t setting(const char* name, std::uint64_t fallback) {
    const char* text = std::getenv(name);
    return text && *text ? std::strtoull(text, nullptr, 0) : fallback;
}

[[noreturn]] void power_off(const char* why) {
    std::printf("kdcom-guest-init: powering off: %s\n", why);
    std::fflush(stdout);
    ::sync();
    ::reboot(RB_POWER_OFF);
    std::_Exit(1);  // not pid 1 (a test run): just exit
}

}  // namespace

int main() {
    ::mkdir("/sys", 0555);
    if (::mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0 && errno != EBUSY)
        std::printf("kdcom-guest-init: cannot mount sysfs (it may be mounted already)\n");
    const std::uint64_t image_mib = setting("kdcom_image_mib", 64);
    const auto seed = static_cast<std::uint32_t>(setting("kdcom_seed", 1));

    char error[512];
    kdcom_guest* guest = kdcom_guest_attach_ivshmem(nullptr, error, sizeof error);
    if (!guest) power_off(error);
    std::printf("kdcom-guest-init: attached; a %llu MiB image, seed %u\n", static_cast<unsigned long long>(image_mib), seed);
    std::fflush(stdout);

    kdcom::guest::memory_image memory(std::max<std::uint64_t>(image_mib << 20, 1 << 20), seed);
    kdcom::guest::fake_kernel_options options;
    options.kern_base = kern_base;
    options.receive_timeout = std::chrono::milliseconds(100);
    kdcom::guest::fake_kernel kernel(guest, memory, options);
    kernel.set_reboot_machine([] {
        std::printf("kdcom-guest-init: the debugger asked for a reboot\n");
        std::fflush(stdout);
        ::sync();
        ::reboot(RB_AUTOBOOT);
    });
    kernel.print("fake kernel: booted in a QEMU guest, waiting for the debugger\n");
    const std::atomic<bool> never{false};
    kernel.run(never);
    power_off(("the host went away: " + kernel.error()).c_str());
}
