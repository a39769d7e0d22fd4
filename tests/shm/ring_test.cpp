// The shared-memory ring: messages of every size in order through wrap-around, full and
// too-large, and a hostile region (bad counters, bad lengths, a thread scribbling over everything)
// that never causes an out-of-bounds access, a hang, or a message that was not written whole.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "kdcom/shm/layout.h"
#include "kdcom/shm/region.hpp"
#include "kdcom/shm/ring.hpp"

namespace {
using namespace kdcom::shm;
using bytes = std::vector<std::uint8_t>;

static_assert(sizeof(kdcom_shm_ring_counters) == 128);
static_assert(sizeof(kdcom_shm_header) == 64 + 2 * 128, "the C layout is part of the guest ABI");
static_assert(sizeof(kdcom_shm_message_header) == 8);

struct region {
    explicit region(std::uint32_t ring_size = 4096, std::uint32_t max_message = 4096 + 64)
        : memory(KDCOM_SHM_REGION_SIZE(ring_size) + 64), size(ring_size), max(max_message) {
        header()->magic = KDCOM_SHM_MAGIC;
        header()->ring_size = ring_size;
    }
    kdcom_shm_header* header() { return reinterpret_cast<kdcom_shm_header*>(base()); }
    std::uint8_t* base() { return reinterpret_cast<std::uint8_t*>((reinterpret_cast<std::uintptr_t>(memory.data()) + 63) & ~std::uintptr_t{63}); }
    std::uint8_t* data(int ring) { return base() + sizeof(kdcom_shm_header) + static_cast<std::size_t>(ring) * size; }
    ring producer(int r = 0) { return ring(&header()->rings[r], data(r), size, max); }
    ring consumer(int r = 0) { return ring(&header()->rings[r], data(r), size, max); }

    std::vector<std::uint8_t> memory;
    std::uint32_t size, max;
};

bytes pattern(std::size_t n, std::uint8_t seed) {
    bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 13);
    return b;
}

TEST(ShmRing, MessagesOfEverySizeArriveWholeAndInOrderThroughWrapAround) {
    region r;
    auto p = r.producer();
    auto c = r.consumer();
    bytes out(r.max);
    std::mt19937 rng(3);
    for (int i = 0; i < 5000; ++i) {
        const bytes msg = pattern(rng() % 1500, static_cast<std::uint8_t>(i));
        ASSERT_EQ(p.write(KDCOM_SHM_KDCOM_BYTES, msg), ring_status::ok) << i;
        std::uint16_t kind = 0;
        std::size_t length = 0;
        ASSERT_EQ(c.read(out, kind, length), ring_status::ok) << i;
        ASSERT_EQ(kind, KDCOM_SHM_KDCOM_BYTES);
        ASSERT_EQ(bytes(out.begin(), out.begin() + static_cast<long>(length)), msg) << i;
    }
    std::uint16_t kind;
    std::size_t length;
    EXPECT_EQ(c.read(out, kind, length), ring_status::empty);
}

TEST(ShmRing, AFullRingRefusesUntilTheConsumerCatchesUp) {
    region r;
    auto p = r.producer();
    auto c = r.consumer();
    const bytes msg = pattern(1000, 1);
    int written = 0;
    while (p.write(KDCOM_SHM_KD_PDU, msg) == ring_status::ok) ++written;
    EXPECT_EQ(written, 4) << "4096 bytes hold four 1008-byte messages";
    EXPECT_EQ(p.write(KDCOM_SHM_KD_PDU, msg), ring_status::full);
    bytes out(r.max);
    std::uint16_t kind;
    std::size_t length;
    ASSERT_EQ(c.read(out, kind, length), ring_status::ok);
    EXPECT_EQ(p.write(KDCOM_SHM_KD_PDU, msg), ring_status::ok);
}

TEST(ShmRing, AMessageThatCanNeverFitIsTooLarge) {
    region r(4096, 8000);
    auto p = r.producer();
    EXPECT_EQ(p.write(KDCOM_SHM_KD_PDU, bytes(4090)), ring_status::too_large) << "bigger than the ring";
    region small_limit(4096, 100);
    auto q = small_limit.producer();
    EXPECT_EQ(q.write(KDCOM_SHM_KD_PDU, bytes(101)), ring_status::too_large) << "bigger than max_message";
}

TEST(ShmRing, ACounterClaimingMoreThanTheRingHoldsIsCorrupt) {
    region r;
    auto c = r.consumer();
    r.header()->rings[0].head = 5000;  // the guest says 5000 bytes are waiting in a 4096-byte ring
    bytes out(r.max);
    std::uint16_t kind;
    std::size_t length;
    EXPECT_EQ(c.read(out, kind, length), ring_status::corrupt);
    auto p = r.producer();
    r.header()->rings[0].tail = 0xFFFFE000u;  // the guest's tail: 8192 bytes behind our head, in a 4096-byte ring
    EXPECT_EQ(p.write(KDCOM_SHM_KD_PDU, bytes(8)), ring_status::corrupt);
}

TEST(ShmRing, AMisalignedCounterTakenFromTheRegionIsCorruptNotAnOverrun) {
    // Found by the shm_ring fuzzer: resynchronise() adopts whatever the region holds.
    region r;
    r.header()->rings[0].tail = 4093;
    r.header()->rings[0].head = 4093 + 16;
    auto c = r.consumer();
    c.resynchronise();
    bytes out(r.max);
    std::uint16_t kind;
    std::size_t length;
    EXPECT_EQ(c.read(out, kind, length), ring_status::corrupt);
    auto p = r.producer();
    p.resynchronise();
    EXPECT_EQ(p.write(KDCOM_SHM_KD_PDU, bytes(8)), ring_status::corrupt);
}

TEST(ShmRing, ALengthBeyondWhatWasPublishedOrAllowedIsCorruptAndNothingIsConsumed) {
    region r;
    auto p = r.producer();
    auto c = r.consumer();
    ASSERT_EQ(p.write(KDCOM_SHM_KD_PDU, pattern(16, 2)), ring_status::ok);
    kdcom_shm_message_header h;
    std::memcpy(&h, r.data(0), sizeof h);
    h.length = 3000;  // more than the 24 bytes published
    std::memcpy(r.data(0), &h, sizeof h);
    bytes out(r.max);
    std::uint16_t kind;
    std::size_t length;
    EXPECT_EQ(c.read(out, kind, length), ring_status::corrupt);
    h.length = 16;
    h.kind = 77;  // no such kind
    std::memcpy(r.data(0), &h, sizeof h);
    EXPECT_EQ(c.read(out, kind, length), ring_status::corrupt);
    h.kind = KDCOM_SHM_KD_PDU;
    std::memcpy(r.data(0), &h, sizeof h);
    EXPECT_EQ(c.read(out, kind, length), ring_status::ok) << "nothing was consumed by the failed reads";
}

TEST(ShmRing, AThreadScribblingOverTheRegionNeverCausesAnOutOfBoundsReadOrAHang) {
    region r;
    auto c = r.consumer();
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> scribbles{0};
    std::thread scribbler([&] {
        std::mt19937 rng(9);
        auto* words = reinterpret_cast<std::uint32_t*>(r.base());
        const std::size_t count = KDCOM_SHM_REGION_SIZE(r.size) / 4;
        while (!stop.load(std::memory_order_relaxed)) {
            // Mostly small aligned values, which pass the counter checks more often and take the
            // reader further into its checks; sometimes anything.
            const std::uint32_t x = static_cast<std::uint32_t>(rng());
            const std::uint32_t value = x % 4 == 0 ? x : (x >> 4) % 2048 & ~7u;
            std::atomic_ref<std::uint32_t>(words[rng() % count]).store(value, std::memory_order_relaxed);
            scribbles.fetch_add(1, std::memory_order_relaxed);
        }
    });
    bytes out(r.max);
    std::size_t ok = 0, corrupt = 0, empty = 0;
    // Read while a million random words land on the region (every read returns: no hang).
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (scribbles.load(std::memory_order_relaxed) < 1'000'000 && std::chrono::steady_clock::now() < give_up) {
        std::uint16_t kind = 0;
        std::size_t length = 0;
        switch (c.read(out, kind, length)) {
        case ring_status::ok:
            ++ok;
            ASSERT_LE(length, out.size());
            ASSERT_TRUE(kind == KDCOM_SHM_KDCOM_BYTES || kind == KDCOM_SHM_KD_PDU);
            break;
        case ring_status::corrupt: ++corrupt; c.resynchronise(); break;
        case ring_status::empty: ++empty; break;
        default: FAIL() << "a consumer never reports full or too_large";
        }
    }
    stop = true;
    scribbler.join();
    EXPECT_GE(scribbles.load(), 1'000'000u);
    EXPECT_GT(corrupt, 0u) << "the scribbling was noticed";
    EXPECT_GT(ok + corrupt + empty, 0u);
}
// Messages rewritten while they are being copied out: the race a hostile guest can always cause.
// The ring copies the region with atomic word accesses, so under ThreadSanitizer this is no data
// race (a plain memcpy would be reported here), and whatever bytes are copied, only the copy is
// checked and used.
TEST(ShmRing, MessagesRewrittenWhileTheConsumerCopiesThemAreNoDataRace) {
    region r;
    std::atomic<bool> stop{false};
    std::thread scribbler([&] {
        std::mt19937_64 rng(5);
        auto* words = reinterpret_cast<std::uint64_t*>(r.data(0));
        while (!stop.load(std::memory_order_relaxed)) {
            // Words that still read as plausible headers (kind 1, a short length), so that the
            // consumer keeps accepting messages and copying their payloads.
            const std::uint64_t value = (std::uint64_t{KDCOM_SHM_KDCOM_BYTES} << 32) | (rng() % 64);
            std::atomic_ref<std::uint64_t>(words[rng() % (r.size / 8)]).store(value, std::memory_order_relaxed);
        }
    });
    std::size_t ok = 0, corrupt = 0;
    bytes out(r.max);
    const bytes msg = pattern(200, 3);
    auto p = r.producer();
    auto c = r.consumer();
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (ok < 20000 && std::chrono::steady_clock::now() < give_up) {
        while (p.write(KDCOM_SHM_KDCOM_BYTES, msg) == ring_status::ok) {
        }
        std::uint16_t kind = 0;
        std::size_t length = 0;
        const auto status = c.read(out, kind, length);
        if (status == ring_status::ok) {
            ++ok;
            ASSERT_LE(length, r.max);
        } else if (status == ring_status::corrupt) {
            // Start the ring over, as a host would with a re-initialised region.
            ++corrupt;
            for (auto* counter : {&r.header()->rings[0].head, &r.header()->rings[0].tail})
                std::atomic_ref<std::uint32_t>(*counter).store(0, std::memory_order_relaxed);
            p = r.producer();
            c = r.consumer();
        }
    }
    stop = true;
    scribbler.join();
    EXPECT_GE(ok, 20000u) << "messages kept being copied out while they were rewritten";
}

TEST(ShmRegion, AHeaderIsAcceptedOnlyWithSizesThatFitTheMapping) {
    std::vector<std::uint64_t> words(KDCOM_SHM_REGION_SIZE(4096u) / 8);
    const std::span<std::uint8_t> memory(reinterpret_cast<std::uint8_t*>(words.data()), words.size() * 8);
    kdcom::shm::region_parameters p{4096, 1024, 7};
    ASSERT_FALSE(kdcom::shm::region::initialise(memory, p));
    kdcom::shm::region_parameters read;
    ASSERT_FALSE(kdcom::shm::region::read_parameters(memory, read));
    EXPECT_EQ(read.ring_size, 4096u);
    EXPECT_EQ(read.max_message, 1024u);
    EXPECT_EQ(read.generation, 7u);

    auto* h = reinterpret_cast<kdcom_shm_header*>(memory.data());
    h->max_message = 0xFFFFFFFB;  // found by the fuzzer: its footprint used to wrap to almost nothing
    EXPECT_TRUE(kdcom::shm::region::read_parameters(memory, read));
    h->max_message = 1024;
    h->ring_size = 8192;  // larger than what is mapped
    EXPECT_TRUE(kdcom::shm::region::read_parameters(memory, read));
    h->ring_size = 6000;  // not a power of two
    EXPECT_TRUE(kdcom::shm::region::read_parameters(memory, read));
    h->ring_size = 4096;
    h->version = 2;
    EXPECT_EQ(kdcom::shm::region::read_parameters(memory, read), kdcom::errc::shm_incompatible_region);
}

TEST(ShmRing, AConsumerSeesTheProducersWaitingMark) {
    region r;
    auto p = r.producer();
    auto c = r.consumer();
    EXPECT_FALSE(c.producer_waiting());
    p.mark_waiting(true);
    EXPECT_TRUE(c.producer_waiting()) << "so it rings the producer's doorbell after making room";
    p.mark_waiting(false);
    EXPECT_FALSE(c.producer_waiting());
}

}  // namespace
