// libFuzzer target for the pcapng capture reader: never crashes, never buffers more than its block
// limit, returns nothing after an error, and whatever records it returns survive a round trip
// through the writer. The first input byte picks the chunk size the file is pushed in.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "kdcom/capture/pcapng_reader.hpp"
#include "kdcom/capture/pcapng_writer.hpp"

namespace {

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "%s\n", what);
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    using namespace kdcom::capture;
    const std::size_t chunk = data[0] % 64 + 1;
    const std::span<const std::uint8_t> file(data + 1, size - 1);
    pcapng::reader reader({.max_block = 4096});
    std::vector<record> records;
    for (std::size_t at = 0; at < file.size(); at += chunk) {
        reader.push(file.subspan(at, std::min(chunk, file.size() - at)));
        while (auto r = reader.next()) {
            check(!reader.failed(), "a record after an error");
            check(r->bytes.size() <= 4096, "a record larger than the block limit");
            records.push_back(std::move(*r));
        }
    }
    reader.finish();
    while (auto r = reader.next()) records.push_back(std::move(*r));
    check(!reader.next(), "a record after the end");
    check(reader.failed() == !reader.error_detail().empty(), "an error without a detail, or a detail without one");

    std::vector<std::uint8_t> again;
    pcapng::append_file_header(again, reader.info());
    for (const auto& r : records) pcapng::append_record(again, r.time_ns, r.direction, r.bytes);
    pcapng::reader second;
    second.push(again);
    second.finish();
    for (const auto& r : records) {
        const auto back = second.next();
        check(back && back->time_ns == r.time_ns && back->direction == r.direction && back->bytes == r.bytes,
              "a record changed in a round trip through the writer");
    }
    check(!second.next() && !second.failed(), "the rewritten capture did not read cleanly");
    return 0;
}
