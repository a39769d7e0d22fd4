#include "kdcom/capture/capture_file.hpp"

#include <cerrno>

#include "kdcom/capture/pcapng_writer.hpp"

namespace kdcom::capture {

std::unique_ptr<capture_file> capture_file::create(const std::string& path, const capture_info& info,
                                                   std::error_code& ec) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) {
        ec = {errno, std::generic_category()};
        return nullptr;
    }
    std::unique_ptr<capture_file> c(new capture_file(path, f));
    std::vector<std::uint8_t> header;
    pcapng::append_file_header(header, info);
    ec = c->put(header);
    if (ec) return nullptr;
    return c;
}

capture_file::capture_file(std::string path, std::FILE* file)
    : path_(std::move(path)),
      file_(file),
      wall_origin_ns_(static_cast<std::int64_t>(now_ns())),
      steady_origin_(std::chrono::steady_clock::now().time_since_epoch()) {}

capture_file::~capture_file() { std::fclose(file_); }

std::error_code capture_file::put(const std::vector<std::uint8_t>& block) {
    if (std::fwrite(block.data(), 1, block.size(), file_) != block.size() || std::fflush(file_) != 0)
        return {errno ? errno : EIO, std::generic_category()};
    return {};
}

void capture_file::write(std::uint64_t time_ns, flow direction, std::span<const std::uint8_t> bytes) {
    const std::lock_guard lock(mutex_);
    if (error_) return;
    do {
        const auto piece = bytes.first(std::min(bytes.size(), pcapng::max_record_bytes));
        scratch_.clear();
        pcapng::append_record(scratch_, time_ns, direction, piece);
        if ((error_ = put(scratch_))) return;
        ++records_;
        bytes_ += piece.size();
        bytes = bytes.subspan(piece.size());
    } while (!bytes.empty());
}

std::error_code capture_file::error() const {
    const std::lock_guard lock(mutex_);
    return error_;
}

std::uint64_t capture_file::records() const {
    const std::lock_guard lock(mutex_);
    return records_;
}

std::uint64_t capture_file::bytes() const {
    const std::lock_guard lock(mutex_);
    return bytes_;
}

net::tap_function capture_tap(std::shared_ptr<capture_file> file, role session_role) {
    const flow outgoing = session_role == role::debugger ? flow::debugger_to_target : flow::target_to_debugger;
    const flow incoming = session_role == role::debugger ? flow::target_to_debugger : flow::debugger_to_target;
    return [file = std::move(file), outgoing, incoming](net::direction d, timestamp t,
                                                        std::span<const std::uint8_t> bytes) {
        file->write_steady(t, d == net::direction::to_peer ? outgoing : incoming, bytes);
    };
}

}  // namespace kdcom::capture
