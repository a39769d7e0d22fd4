// libFuzzer target for the shared-memory ring's consumer: the fuzzer supplies the whole region
// (counters and data, as a hostile guest could write them). The reader must never read or write
// out of bounds (ASan), never report a length it was not allowed to, and never loop forever.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kdcom/shm/ring.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    constexpr std::uint32_t ring_size = 4096, max_message = 1024;
    std::vector<std::uint8_t> region(sizeof(kdcom_shm_header) + ring_size, 0);
    std::memcpy(region.data(), data, std::min(size, region.size()));
    auto* header = reinterpret_cast<kdcom_shm_header*>(region.data());
    kdcom::shm::ring consumer(&header->rings[0], region.data() + sizeof(kdcom_shm_header), ring_size, max_message);
    consumer.resynchronise();
    std::vector<std::uint8_t> out(max_message);
    for (int i = 0; i < 1024; ++i) {
        std::uint16_t kind = 0;
        std::size_t length = 0;
        const auto status = consumer.read(out, kind, length);
        if (status == kdcom::shm::ring_status::ok) {
            if (length > max_message || kind == 0 || kind > KDCOM_SHM_KD_PDU) {
                std::fprintf(stderr, "accepted a message it should have refused\n");
                std::abort();
            }
            continue;
        }
        if (status != kdcom::shm::ring_status::empty && status != kdcom::shm::ring_status::corrupt) {
            std::fprintf(stderr, "a consumer reported a producer's status\n");
            std::abort();
        }
        break;
    }
    return 0;
}
