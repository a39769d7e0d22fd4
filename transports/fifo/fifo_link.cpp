#include "kdcom/net/fifo_link.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <asio/posix/stream_descriptor.hpp>
#include <asio/write.hpp>

#include "kdcom/net/asio_byte_stream.hpp"

namespace kdcom::net {
namespace {

class fifo_stream final : public byte_stream {
public:
    fifo_stream(asio::posix::stream_descriptor in, asio::posix::stream_descriptor out, std::string description)
        : in_(std::move(in)), out_(std::move(out)), description_(std::move(description)) {}
    ~fifo_stream() override { close(); }

    void async_read_some(std::span<std::uint8_t> buffer, io_handler handler) override {
        in_.async_read_some(asio::buffer(buffer.data(), buffer.size()), std::move(handler));
    }
    void async_write(std::span<const std::uint8_t> bytes, io_handler handler) override {
        asio::async_write(out_, asio::buffer(bytes.data(), bytes.size()), std::move(handler));
    }
    std::size_t write_now(std::span<const std::uint8_t> bytes) override {
        return detail::write_at_once(out_, out_non_blocking_, bytes);
    }
    void close() override {
        std::error_code ignored;
        in_.close(ignored);
        out_.close(ignored);
    }
    std::string describe() const override { return description_; }

private:
    asio::posix::stream_descriptor in_, out_;
    std::string description_;
    bool out_non_blocking_ = false;
};

std::error_code last_error() { return {errno, std::generic_category()}; }

// Opens (creating it if needed) one FIFO. Read-write, so that opening never waits for the other
// side and the reader never sees end-of-file when a writer goes away.
int open_fifo(const std::string& path, std::error_code& ec) {
    if (::mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST) {
        ec = last_error();
        return -1;
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISFIFO(st.st_mode)) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return -1;
    }
    const int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) ec = last_error();
    return fd;
}

class fifo_link final : public link {
public:
    fifo_link(asio::any_io_executor ex, std::string base, role side)
        : executor_(std::move(ex)), base_(std::move(base)), side_(side) {}

    void async_open(stream_handler handler) override {
        const bool guest = side_ == role::target;
        const std::string read_path = base_ + (guest ? ".in" : ".out");
        const std::string write_path = base_ + (guest ? ".out" : ".in");
        std::error_code ec;
        const int in = open_fifo(read_path, ec);
        const int out = in < 0 ? -1 : open_fifo(write_path, ec);
        if (in < 0 || out < 0) {
            if (in >= 0) ::close(in);
            handler(ec, nullptr);
            return;
        }
        handler({}, std::make_unique<fifo_stream>(asio::posix::stream_descriptor(executor_, in),
                                                  asio::posix::stream_descriptor(executor_, out),
                                                  "fifo " + read_path + " / " + write_path));
    }
    void close() override {}
    std::string describe() const override { return "fifo " + base_ + ".in/.out"; }
    asio::any_io_executor get_executor() const override { return executor_; }

private:
    asio::any_io_executor executor_;
    std::string base_;
    role side_;
};

}  // namespace

std::unique_ptr<link> make_fifo_link(const asio::any_io_executor& ex, std::string base, role side) {
    return std::make_unique<fifo_link>(ex, std::move(base), side);
}

}  // namespace kdcom::net
