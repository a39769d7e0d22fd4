// The guest's channel inside a Linux VM with QEMU's ivshmem-doorbell device: the device's BAR2 is
// the region (sysfs resource2), its BAR0 holds the Doorbell register (resource0, offset 12). No
// driver is needed: the files map the BARs directly. The guest polls the region (it needs no
// interrupt, which would need a driver to enable MSI-X, and a kernel debugger runs with interrupts
// off anyway) and rings the host by writing (host peer << 16) | vector 0 to the Doorbell.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "kdcom/guest/kd_guest.h"
#include "kdcom/shm/generation.hpp"
#include "error_text.hpp"

using namespace kdcom;
using kdcom::guest_detail::set_error;

namespace {

constexpr std::size_t doorbell_offset = 12;  // BAR0: IntrMask 0, IntrStatus 4, IVPosition 8, Doorbell 12
constexpr std::uint32_t announce_timeout_ms = 10'000;

struct mapped {
    void* base = MAP_FAILED;
    std::size_t size = 0;
    ~mapped() {
        if (base != MAP_FAILED) ::munmap(base, size);
    }
};

struct ivshmem_channel {
    mapped registers, memory;
};

std::string read_line(const std::string& path) {
    char text[64] = {};
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    const auto n = ::read(fd, text, sizeof text - 1);
    ::close(fd);
    std::string s(text, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// The first PCI device with QEMU's ivshmem ids (Red Hat's vendor 1af4, device 1110).
std::string find_device() {
    const std::string root = "/sys/bus/pci/devices";
    DIR* dir = ::opendir(root.c_str());
    if (!dir) return {};
    std::string found;
    while (const dirent* e = ::readdir(dir)) {
        if (e->d_name[0] == '.') continue;
        const std::string device = root + "/" + e->d_name;
        if (read_line(device + "/vendor") == "0x1af4" && read_line(device + "/device") == "0x1110") {
            found = device;
            break;
        }
    }
    ::closedir(dir);
    return found;
}

// Maps a BAR's resource file whole. Empty message on success.
std::string map_resource(const std::string& path, mapped& out) {
    const int fd = ::open(path.c_str(), O_RDWR | O_SYNC | O_CLOEXEC);
    if (fd < 0) return "cannot open " + path + ": " + std::strerror(errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_size <= 0) {
        ::close(fd);
        return path + " has no size";
    }
    out.size = static_cast<std::size_t>(st.st_size);
    out.base = ::mmap(nullptr, out.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int mmap_errno = errno;
    ::close(fd);
    if (out.base == MAP_FAILED) return "cannot map " + path + ": " + std::strerror(mmap_errno);
    return {};
}

void ring_host(void* context) {
    auto& c = *static_cast<ivshmem_channel*>(context);
    const std::uint32_t peer = shm::generation::host_peer({static_cast<std::uint8_t*>(c.memory.base), c.memory.size});
    auto* doorbell = reinterpret_cast<volatile std::uint32_t*>(static_cast<std::uint8_t*>(c.registers.base) + doorbell_offset);
    *doorbell = (peer & 0xFFFFu) << 16;  // vector 0
}

void release(void* context) { delete static_cast<ivshmem_channel*>(context); }

}  // namespace

extern "C" kdcom_guest* kdcom_guest_attach_ivshmem(const char* device, char* error, size_t error_size) {
    const std::string path = device ? device : find_device();
    if (path.empty()) {
        set_error(error, error_size, "no ivshmem PCI device (vendor 1af4, device 1110) under /sys/bus/pci/devices "
                                     "(is sysfs mounted, and QEMU started with -device ivshmem-doorbell?)");
        return nullptr;
    }
    // Turns on the device's memory decoding if the firmware left it off (harmless if it is on).
    if (const int fd = ::open((path + "/enable").c_str(), O_WRONLY | O_CLOEXEC); fd >= 0) {
        [[maybe_unused]] const auto n = ::write(fd, "1", 1);
        ::close(fd);
    }
    auto c = std::make_unique<ivshmem_channel>();
    for (auto [file, into] : {std::pair{"/resource0", &c->registers}, std::pair{"/resource2", &c->memory}}) {
        if (auto why = map_resource(path + file, *into); !why.empty()) {
            set_error(error, error_size, why);
            return nullptr;
        }
    }
    if (c->registers.size < doorbell_offset + 4) {
        set_error(error, error_size, path + "/resource0 is too small for the ivshmem registers");
        return nullptr;
    }
    void* memory = c->memory.base;
    const std::size_t size = c->memory.size;
    const kdcom_guest_channel channel{memory, size, c.release(), ring_host, nullptr, nullptr, release, 1, announce_timeout_ms};
    return kdcom_guest_open(&channel, error, error_size);
}
