// A capture file read back whole, for tests that check what a tool or a session recorded.
#pragma once

#include <string>
#include <system_error>
#include <vector>

#include "kdcom/capture/pcapng_reader.hpp"
#include "support/decode_helpers.hpp"

namespace kdcom::test {

struct capture_contents {
    std::vector<capture::record> records;
    capture::capture_info info;
    std::error_code error;
    std::string detail;

    // Everything that went one way, in order.
    bytes stream(capture::flow direction) const {
        bytes all;
        for (const auto& r : records)
            if (r.direction == direction) append(all, r.bytes);
        return all;
    }
};

inline capture_contents read_capture(const std::string& path) {
    const std::string file = read_file(path);
    capture::pcapng::reader reader;
    reader.push({reinterpret_cast<const std::uint8_t*>(file.data()), file.size()});
    reader.finish();
    capture_contents c;
    while (auto r = reader.next()) c.records.push_back(std::move(*r));
    c.error = reader.error();
    c.detail = reader.error_detail();
    c.info = reader.info();
    return c;
}

}  // namespace kdcom::test
