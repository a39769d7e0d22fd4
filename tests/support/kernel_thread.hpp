// A fake kernel running on a thread of its own, attached to a bridge's shared memory by name, for
// tests that drive it from a debugger.
#pragma once

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "kdcom/guest/fake_kernel.hpp"

namespace kdcom::test {

// A running fake kernel on its own thread.
struct kernel_thread {
    kdcom_guest* guest = nullptr;
    guest::memory_image memory;
    std::unique_ptr<guest::fake_kernel> kernel;
    std::atomic<bool> stop{false};
    std::thread thread;

    explicit kernel_thread(const std::string& name, std::string boot_message = {}, std::uint64_t memory_size = 1 << 20)
        : memory(memory_size) {
        char error[256] = {};
        guest = kdcom_guest_attach(name.c_str(), error, sizeof error);
        if (!guest) throw std::runtime_error(error);
        kernel = std::make_unique<guest::fake_kernel>(guest, memory, guest::fake_kernel_options{.kern_base = 0xfffff80000000000u});
        thread = std::thread([this, boot_message] {
            if (!boot_message.empty()) kernel->print(boot_message);
            kernel->run(stop);
        });
    }
    // Stops the kernel and waits for its thread; its statistics may be read after this.
    void finish() {
        stop = true;
        if (thread.joinable()) thread.join();
    }
    ~kernel_thread() {
        finish();
        kdcom_guest_detach(guest);
    }
};

}  // namespace kdcom::test
