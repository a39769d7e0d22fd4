// A link whose streams lose, damage and repeat what they write, deterministically from a seed: a
// write is dropped whole with probability `loss` (as if its frames never arrived); otherwise one
// of its bytes is replaced with probability `corrupt`, it goes out twice with probability
// `duplicate`, and line noise precedes it with probability `garbage`. The faults are those of
// every simulated line (kdcom/sim/faults.hpp), applied to real streams. For simulations and tests
// of what a bad debugger link does to everything above it (kdcom-sim --faults).
#pragma once

#include <memory>
#include <vector>

#include "kdcom/net/byte_stream.hpp"
#include "kdcom/sim/faults.hpp"

namespace kdcom::net {

struct link_faults {
    double loss = 0, corrupt = 0, duplicate = 0, garbage = 0;  // probabilities per write
    unsigned seed = 1;

    sim::faults model() const {
        return {.packet_loss = loss, .damage = corrupt, .duplication = duplicate, .garbage = garbage, .garbage_max = 16};
    }
};

class faulty_link final : public link {
public:
    faulty_link(std::unique_ptr<link> inner, link_faults faults)
        : inner_(std::move(inner)), faults_(faults.model()), rng_(std::make_shared<sim::random>(faults.seed)) {}

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
        stream(std::unique_ptr<byte_stream> inner, const sim::faults& faults, std::shared_ptr<sim::random> rng)
            : inner_(std::move(inner)), faults_(faults), rng_(std::move(rng)) {}
        void async_read_some(std::span<std::uint8_t> b, io_handler h) override { inner_->async_read_some(b, std::move(h)); }
        void async_write(std::span<const std::uint8_t> b, io_handler h) override {
            // A lost write is reported written: it went, and vanished on the wire.
            const bool arrives = sim::apply_faults(faults_, *rng_, b, damaged_);
            inner_->async_write(arrives ? std::span<const std::uint8_t>(damaged_) : std::span<const std::uint8_t>{},
                                [h = std::move(h), n = b.size()](std::error_code ec, std::size_t) { h(ec, n); });
        }
        void close() override { inner_->close(); }
        std::string describe() const override { return inner_->describe(); }

    private:
        std::unique_ptr<byte_stream> inner_;
        sim::faults faults_;
        std::shared_ptr<sim::random> rng_;
        std::vector<std::uint8_t> damaged_;  // lives until the write completes (one at a time)
    };

    std::unique_ptr<link> inner_;
    sim::faults faults_;
    std::shared_ptr<sim::random> rng_;
};

}  // namespace kdcom::net
