// A link whose streams lose, damage and repeat what they write, deterministically from a seed: a
// write is dropped whole with probability `loss` (as if its frames never arrived); otherwise it
// has one byte flipped with probability `corrupt`, goes out twice with probability `duplicate`,
// and is preceded by 1 to 16 random bytes of line noise with probability `garbage`. For simulations and tests of what a bad debugger link does to everything above it
// (kdcom-sim --faults).
#pragma once

#include <memory>
#include <random>
#include <vector>

#include "kdcom/net/byte_stream.hpp"

namespace kdcom::net {

struct link_faults {
    double loss = 0, corrupt = 0, duplicate = 0, garbage = 0;  // probabilities per write
    unsigned seed = 1;
};

class faulty_link final : public link {
public:
    faulty_link(std::unique_ptr<link> inner, link_faults faults)
        : inner_(std::move(inner)), faults_(faults), rng_(std::make_shared<std::mt19937>(faults.seed)) {}

    void async_open(stream_handler handler) override {
        inner_->async_open([this, handler = std::move(handler)](std::error_code ec, std::unique_ptr<byte_stream> s) {
            if (ec) return handler(ec, nullptr);
            handler({}, std::make_unique<stream>(std::move(s), faults_, rng_));
        });
    }
    void close() override { inner_->close(); }
    std::string describe() const override { return "faulty " + inner_->describe(); }
    asio::any_io_executor get_executor() const override { return inner_->get_executor(); }

private:
    class stream final : public byte_stream {
    public:
        stream(std::unique_ptr<byte_stream> inner, link_faults faults, std::shared_ptr<std::mt19937> rng)
            : inner_(std::move(inner)), faults_(faults), rng_(std::move(rng)) {}
        void async_read_some(std::span<std::uint8_t> b, io_handler h) override { inner_->async_read_some(b, std::move(h)); }
        void async_write(std::span<const std::uint8_t> b, io_handler h) override {
            std::uniform_real_distribution<double> p(0, 1);
            if (p(*rng_) < faults_.loss) {  // gone on the wire: report success, send nothing
                inner_->async_write({}, [h = std::move(h), n = b.size()](std::error_code ec, std::size_t) { h(ec, n); });
                return;
            }
            damaged_.clear();
            // (Drawn only when asked for: a seed gives the same faults as before garbage existed.)
            if (faults_.garbage > 0 && p(*rng_) < faults_.garbage)
                for (std::size_t n = 1 + (*rng_)() % 16; n > 0; --n) damaged_.push_back(static_cast<std::uint8_t>((*rng_)()));
            damaged_.insert(damaged_.end(), b.begin(), b.end());
            if (!b.empty() && p(*rng_) < faults_.corrupt) damaged_[damaged_.size() - b.size() + (*rng_)() % b.size()] ^= 0x5A;
            if (p(*rng_) < faults_.duplicate) damaged_.insert(damaged_.end(), damaged_.begin(), damaged_.end());
            inner_->async_write(damaged_, [h = std::move(h), n = b.size()](std::error_code ec, std::size_t) { h(ec, n); });
        }
        void close() override { inner_->close(); }
        std::string describe() const override { return inner_->describe(); }

    private:
        std::unique_ptr<byte_stream> inner_;
        link_faults faults_;
        std::shared_ptr<std::mt19937> rng_;
        std::vector<std::uint8_t> damaged_;  // lives until the write completes (one at a time)
    };

    std::unique_ptr<link> inner_;
    link_faults faults_;
    std::shared_ptr<std::mt19937> rng_;
};

}  // namespace kdcom::net
