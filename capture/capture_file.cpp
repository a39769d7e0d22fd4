#include "kdcom/capture/capture_file.hpp"

#include <cerrno>

#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#include <sys/stat.h>
#else
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "kdcom/capture/pcapng_writer.hpp"

namespace kdcom::capture {

namespace {

#ifdef _WIN32
std::FILE* open_for_capture(const std::string& path, existing_file existing, std::error_code& ec) {
    const int flags = _O_WRONLY | _O_CREAT | _O_BINARY | (existing == existing_file::overwrite ? _O_TRUNC : _O_EXCL);
    const int fd = ::_open(path.c_str(), flags, _S_IREAD | _S_IWRITE);
    if (fd < 0) {
        ec = {errno, std::generic_category()};
        return nullptr;
    }
    return ::_fdopen(fd, "wb");
}
#else
// A new file is made with O_EXCL, so nothing there before (a file, a symlink planted in a shared
// temp dir) is ever written through. An existing FIFO or device is written to as it is (a pipe to
// a live Wireshark is not "overwritten"); an existing regular file only when asked, and never
// through a symlink. Every capture file is 0600: it holds guest memory.
std::FILE* open_for_capture(const std::string& path, existing_file existing, std::error_code& ec) {
    auto fail = [&](int e) -> std::FILE* {
        ec = {e, std::generic_category()};
        return nullptr;
    };
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        // O_NONBLOCK: a FIFO nobody reads fails now (ENXIO) instead of blocking the open.
        fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) return fail(errno);
        struct stat st {};
        if (::fstat(fd, &st) != 0 || (S_ISREG(st.st_mode) && existing != existing_file::overwrite)) {
            const int e = errno;
            ::close(fd);
            return fail(S_ISREG(st.st_mode) ? EEXIST : e);
        }
        if (S_ISREG(st.st_mode) && (::ftruncate(fd, 0) != 0 || ::fchmod(fd, 0600) != 0)) {
            const int e = errno;
            ::close(fd);
            return fail(e);
        }
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    }
    if (fd < 0) return fail(errno);
    std::FILE* f = ::fdopen(fd, "wb");
    if (!f) {
        const int e = errno;
        ::close(fd);
        return fail(e);
    }
    return f;
}
#endif

}  // namespace

std::unique_ptr<capture_file> capture_file::create(const std::string& path, const capture_info& info,
                                                   std::error_code& ec, existing_file existing) {
    std::FILE* f = open_for_capture(path, existing, ec);
    if (!f) return nullptr;
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
