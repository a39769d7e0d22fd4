// The pcapng writer and reader: round trips, every way a file can be torn or corrupt, and files
// of the same shape written by other tools (big-endian, other timestamp resolutions).
#include <cstdint>
#include <vector>

#include <boost/endian/conversion.hpp>
#include <gtest/gtest.h>

#include "kdcom/capture/pcapng_reader.hpp"
#include "kdcom/capture/pcapng_writer.hpp"

namespace {

using namespace kdcom::capture;
using bytes = std::vector<std::uint8_t>;

struct read_result {
    std::vector<record> records;
    std::error_code error;
    std::string detail;
    capture_info info;
};

read_result read_all(const bytes& file, std::size_t chunk = 1 << 16, pcapng::reader_options o = {}) {
    pcapng::reader r(o);
    read_result out;
    for (std::size_t at = 0; at < file.size(); at += chunk) {
        r.push(std::span(file).subspan(at, std::min(chunk, file.size() - at)));
        while (auto rec = r.next()) out.records.push_back(std::move(*rec));
    }
    r.finish();
    while (auto rec = r.next()) out.records.push_back(std::move(*rec));
    out.error = r.error();
    out.detail = r.error_detail();
    out.info = r.info();
    return out;
}

bytes pattern(std::size_t n, std::uint8_t seed) {
    bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 7);
    return b;
}

const capture_info sample_info{"kdcom-test 1.0", "unix:///tmp/debugger.sock", "shm://guest"};

std::vector<record> sample_records() {
    return {
        {1'700'000'000'123'456'789u, flow::debugger_to_target, {0x62}},
        {1'700'000'000'123'456'790u, flow::target_to_debugger, pattern(4013, 3)},
        {1'700'000'000'223'456'789u, flow::debugger_to_target, {}},
        {1'700'000'001'000'000'001u, flow::target_to_debugger, pattern(3, 9)},
        {1'700'000'002'000'000'000u, flow::debugger_to_target, pattern(100'000, 1)},
    };
}

bytes sample_file() {
    bytes file;
    pcapng::append_file_header(file, sample_info);
    for (const auto& r : sample_records()) pcapng::append_record(file, r.time_ns, r.direction, r.bytes);
    return file;
}

void expect_same(const std::vector<record>& got, const std::vector<record>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].time_ns, want[i].time_ns) << i;
        EXPECT_EQ(got[i].direction, want[i].direction) << i;
        EXPECT_EQ(got[i].bytes, want[i].bytes) << i;
    }
}

TEST(Pcapng, RecordsComeBackExactlyWhateverTheChunking) {
    const bytes file = sample_file();
    for (std::size_t chunk : {std::size_t{1}, std::size_t{5}, std::size_t{4096}, file.size()}) {
        const auto r = read_all(file, chunk);
        EXPECT_FALSE(r.error) << chunk << ": " << r.detail;
        expect_same(r.records, sample_records());
        EXPECT_EQ(r.info.application, sample_info.application);
        EXPECT_EQ(r.info.debugger, sample_info.debugger);
        EXPECT_EQ(r.info.target, sample_info.target);
    }
}

TEST(Pcapng, BlocksHaveTheLayoutTheFormatPrescribes) {
    bytes file;
    pcapng::append_record(file, 0x0000000100000002u, flow::target_to_debugger, bytes{0x30, 0x30, 0x30, 0x30, 0x07});
    const bytes expected = {
        0x06, 0, 0, 0,  0x34, 0, 0, 0,  // EPB, 52 bytes
        0, 0, 0, 0,                     // interface 0
        1, 0, 0, 0,  2, 0, 0, 0,        // timestamp high, low
        5, 0, 0, 0,  5, 0, 0, 0,        // captured and original length
        0x30, 0x30, 0x30, 0x30, 0x07, 0, 0, 0,  // data, padded to 4
        2, 0, 4, 0,  1, 0, 0, 0,        // epb_flags: inbound
        0, 0, 0, 0,                     // opt_endofopt
        0x34, 0, 0, 0,                  // total length again
    };
    EXPECT_EQ(file, expected);
}

TEST(Pcapng, ATornFileGivesEveryWholeRecordThenSaysItIsTorn) {
    const bytes file = sample_file();
    bytes header;
    pcapng::append_file_header(header, sample_info);
    const auto all = sample_records();
    // Cut the file at every length from the end of the header to one byte short of the whole.
    std::size_t whole_records = 0, record_end = header.size();
    bytes one;
    for (std::size_t cut = header.size() + 1; cut < file.size(); cut += cut < header.size() + 300 ? 1 : 997) {
        while (whole_records < all.size()) {
            one.clear();
            pcapng::append_record(one, all[whole_records].time_ns, all[whole_records].direction, all[whole_records].bytes);
            if (record_end + one.size() > cut) break;
            record_end += one.size();
            ++whole_records;
        }
        const auto r = read_all(bytes(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(cut)), 777);
        ASSERT_EQ(r.records.size(), whole_records) << "cut at " << cut;
        expect_same(r.records, std::vector<record>(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(whole_records)));
        if (cut == record_end) EXPECT_FALSE(r.error) << cut;
        else EXPECT_EQ(r.error, kdcom::capture::capture_errc::torn) << "cut at " << cut;
    }
}

TEST(Pcapng, ACorruptBlockStopsTheReaderAfterTheRecordsBeforeIt) {
    bytes file = sample_file();
    const std::size_t second_block = [&] {
        bytes h;
        pcapng::append_file_header(h, sample_info);
        bytes first;
        const auto r0 = sample_records()[0];
        pcapng::append_record(first, r0.time_ns, r0.direction, r0.bytes);
        return h.size() + first.size();
    }();
    const bytes good = file;

    // Trailing length that disagrees with the leading one.
    const std::uint32_t length = boost::endian::load_little_u32(file.data() + second_block + 4);
    file[second_block + length - 4] ^= 4;
    auto r = read_all(file);
    EXPECT_EQ(r.error, kdcom::capture::capture_errc::corrupt);
    EXPECT_EQ(r.records.size(), 1u);
    EXPECT_NE(r.detail.find("offset " + std::to_string(second_block)), std::string::npos) << r.detail;

    // A length too large to buffer is refused at once, not waited for.
    file = good;
    boost::endian::store_little_u32(file.data() + second_block + 4, 0x7FFFFFF0);
    r = read_all(file);
    EXPECT_EQ(r.error, kdcom::capture::capture_errc::corrupt);
    EXPECT_EQ(r.records.size(), 1u);

    // Lengths that are not a multiple of 4 or shorter than a block.
    for (std::uint32_t bad : {7u, 8u, length + 2}) {
        file = good;
        boost::endian::store_little_u32(file.data() + second_block + 4, bad);
        EXPECT_EQ(read_all(file).error, kdcom::capture::capture_errc::corrupt) << bad;
    }

    // A captured length that overruns its block.
    file = good;
    boost::endian::store_little_u32(file.data() + second_block + 20, length);
    r = read_all(file);
    EXPECT_EQ(r.error, kdcom::capture::capture_errc::corrupt);
    EXPECT_EQ(r.records.size(), 1u);

    // A packet on an interface never described.
    file = good;
    boost::endian::store_little_u32(file.data() + second_block + 8, 1);
    EXPECT_EQ(read_all(file).error, kdcom::capture::capture_errc::corrupt);

    // A packet without a direction.
    file = good;
    const std::size_t flags_at = second_block + length - 12;  // epb_flags value, before end-of-options
    ASSERT_EQ(boost::endian::load_little_u32(file.data() + flags_at), pcapng::flags_inbound);
    boost::endian::store_little_u32(file.data() + flags_at, 0);
    r = read_all(file);
    EXPECT_EQ(r.error, kdcom::capture::capture_errc::corrupt);
    EXPECT_NE(r.detail.find("direction"), std::string::npos) << r.detail;
}

TEST(Pcapng, InputThatIsNotACaptureIsSaidToBeSo) {
    EXPECT_EQ(read_all({}).error, kdcom::capture::capture_errc::not_pcapng);
    const bytes kdcom_stream = {0x30, 0x30, 0x30, 0x30, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    const auto r = read_all(kdcom_stream);
    EXPECT_EQ(r.error, kdcom::capture::capture_errc::not_pcapng);
    EXPECT_TRUE(r.records.empty());
    EXPECT_FALSE(pcapng::looks_like_pcapng(kdcom_stream));
    EXPECT_TRUE(pcapng::looks_like_pcapng(sample_file()));
}

// Builders for hand-made files in either byte order, as other tools write them.
struct hand_made {
    bool big = false;
    bytes out;
    void u16(std::uint16_t v) {
        std::uint8_t b[2];
        big ? boost::endian::store_big_u16(b, v) : boost::endian::store_little_u16(b, v);
        out.insert(out.end(), b, b + 2);
    }
    void u32(std::uint32_t v) {
        std::uint8_t b[4];
        big ? boost::endian::store_big_u32(b, v) : boost::endian::store_little_u32(b, v);
        out.insert(out.end(), b, b + 4);
    }
    void block(std::uint32_t type, const bytes& body) {
        u32(type);
        u32(static_cast<std::uint32_t>(body.size() + 12));
        out.insert(out.end(), body.begin(), body.end());
        u32(static_cast<std::uint32_t>(body.size() + 12));
    }
    bytes section() {
        hand_made b{big, {}};
        b.u32(pcapng::byte_order_magic);
        b.u16(1), b.u16(0), b.u32(0xFFFFFFFF), b.u32(0xFFFFFFFF);
        return b.out;
    }
    bytes interface(std::uint16_t link, int tsresol) {
        hand_made b{big, {}};
        b.u16(link), b.u16(0), b.u32(0);
        if (tsresol >= 0) {
            b.u16(pcapng::if_tsresol), b.u16(1);
            b.out.insert(b.out.end(), {static_cast<std::uint8_t>(tsresol), 0, 0, 0});
        }
        b.u32(0);
        return b.out;
    }
    bytes packet(std::uint64_t ticks, std::uint32_t flags, const bytes& data) {
        hand_made b{big, {}};
        b.u32(0), b.u32(static_cast<std::uint32_t>(ticks >> 32)), b.u32(static_cast<std::uint32_t>(ticks));
        b.u32(static_cast<std::uint32_t>(data.size())), b.u32(static_cast<std::uint32_t>(data.size()));
        b.out.insert(b.out.end(), data.begin(), data.end());
        b.out.resize(b.out.size() + pcapng::padded(data.size()) - data.size());
        b.u16(pcapng::epb_flags), b.u16(4), b.u32(flags), b.u32(0);
        return b.out;
    }
};

TEST(Pcapng, BigEndianFilesAndOtherTimestampResolutionsRead) {
    for (bool big : {false, true}) {
        hand_made f{big, {}};
        f.block(pcapng::section_header_block, f.section());
        f.block(pcapng::interface_description_block, f.interface(pcapng::link_type, -1));   // microseconds
        f.block(pcapng::interface_description_block, f.interface(pcapng::link_type, 0x80 | 10));  // 2^-10 s
        f.block(pcapng::enhanced_packet_block, f.packet(1'500'000, pcapng::flags_outbound, {1, 2, 3}));
        f.block(0x0BAD0000, bytes(8, 0xEE));  // an unknown block is skipped
        bytes second = f.packet(3 * 1024 + 512, pcapng::flags_inbound, {4});
        hand_made b{big, {}};
        b.u32(1);  // interface 1
        std::copy(b.out.begin(), b.out.end(), second.begin());
        f.block(pcapng::enhanced_packet_block, second);

        const auto r = read_all(f.out, 3);
        ASSERT_FALSE(r.error) << r.detail;
        ASSERT_EQ(r.records.size(), 2u);
        EXPECT_EQ(r.records[0].time_ns, 1'500'000'000u);
        EXPECT_EQ(r.records[0].direction, flow::debugger_to_target);
        EXPECT_EQ(r.records[0].bytes, (bytes{1, 2, 3}));
        EXPECT_EQ(r.records[1].time_ns, 3'500'000'000u);
        EXPECT_EQ(r.records[1].direction, flow::target_to_debugger);
    }
}

TEST(Pcapng, PacketsOfAnotherLinkTypeAreRefused) {
    hand_made f;
    f.block(pcapng::section_header_block, f.section());
    f.block(pcapng::interface_description_block, f.interface(1, 9));  // Ethernet
    f.block(pcapng::enhanced_packet_block, f.packet(0, pcapng::flags_inbound, {1}));
    const auto r = read_all(f.out);
    EXPECT_EQ(r.error, kdcom::capture::capture_errc::foreign_link);
    EXPECT_NE(r.detail.find("link type 1"), std::string::npos) << r.detail;
}

TEST(Pcapng, ASecondSectionStartsAfresh) {
    bytes file = sample_file();
    const bytes first = file;
    file.insert(file.end(), first.begin(), first.end());
    const auto r = read_all(file, 1000);
    EXPECT_FALSE(r.error) << r.detail;
    EXPECT_EQ(r.records.size(), 2 * sample_records().size());
}

}  // namespace
