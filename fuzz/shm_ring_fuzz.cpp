// libFuzzer target for the shared-memory ring's consumer and the region header checks: the fuzzer
// supplies the whole region (header, counters and data, as a hostile peer could write them). The
// reader must never read or write out of bounds (ASan), never report a length it was not allowed
// to, never accept sizes that do not fit, and never loop forever.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kdcom/shm/kd_pdu.hpp"
#include "kdcom/shm/region.hpp"
#include "kdcom/shm/ring.hpp"

// A PDU the decoder accepts lies within its message and encodes back to exactly the same bytes.
static void check_pdu(std::span<const std::uint8_t> message) {
    kdcom::shm::kd_pdu pdu;
    if (kdcom::shm::decode_kd_pdu(message, pdu)) return;
    const auto inside = [&](std::span<const std::uint8_t> part) {
        return part.empty() || (part.data() >= message.data() && part.data() + part.size() <= message.data() + message.size());
    };
    std::vector<std::uint8_t> again(message.size() + 16);
    std::error_code ec;
    const std::size_t n = kdcom::shm::encode_kd_pdu(pdu, again, ec);
    if (!inside(pdu.header) || !inside(pdu.data) || n != message.size() ||
        !std::equal(message.begin(), message.end(), again.begin())) {
        std::fprintf(stderr, "a PDU did not survive decoding and encoding\n");
        std::abort();
    }
}

// The same bytes as a whole region announced by someone else: a header the checks accept must give
// rings that stay inside the region whatever their counters and messages say.
static void attach_as_guest(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return;
    std::vector<std::uint64_t> words((size + 7) / 8);  // 8-byte aligned, as a mapping is
    std::memcpy(words.data(), data, size);
    const std::span<std::uint8_t> memory(reinterpret_cast<std::uint8_t*>(words.data()), size);
    kdcom::shm::region_parameters p;
    if (kdcom::shm::region::read_parameters(memory, p)) return;
    if (p.region_size() > size || p.max_message > p.ring_size) {
        std::fprintf(stderr, "accepted a header whose sizes do not fit the region\n");
        std::abort();
    }
    kdcom::shm::region region(memory, p, kdcom::shm::side::guest);
    std::vector<std::uint8_t> out(p.max_message);
    for (int i = 0; i < 256; ++i) {
        std::uint16_t kind = 0;
        std::size_t length = 0;
        if (region.inbound().read(out, kind, length) != kdcom::shm::ring_status::ok) break;
        if (kind == KDCOM_SHM_KD_PDU) check_pdu(std::span(out).first(length));
    }
    const std::uint8_t message[64] = {};
    for (int i = 0; i < 256; ++i)
        if (region.outbound().write(KDCOM_SHM_KDCOM_BYTES, message) != kdcom::shm::ring_status::ok) break;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size <= 256 * 1024) attach_as_guest(data, size);
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
            if (kind == KDCOM_SHM_KD_PDU) check_pdu(std::span(out).first(length));
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
