// Reads pcapng captures incrementally: push bytes as they come, take records out. No I/O.
//
// Accepts what kdcom writes and what other tools write of the same shape: both byte orders,
// several sections, any timestamp resolution, unknown blocks and options (skipped, as pcapng
// asks). Records come only from enhanced packet blocks on LINKTYPE_USER0 interfaces with a
// direction in epb_flags; anything else that claims to carry packets is reported, not guessed at.
//
// Errors stop the reader for good, after every record before the faulty block was returned:
//   capture_not_pcapng   the input does not start with a section header
//   capture_corrupt      a block whose lengths, options or references do not add up
//   capture_foreign_link packets of another link type (an Ethernet capture, say)
//   capture_torn         finish() found the input ending inside a block (a writer that died)
// error_detail() says which block and why, for people.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <boost/endian/conversion.hpp>

#include "kdcom/capture/pcapng_blocks.hpp"
#include "kdcom/capture/record.hpp"
#include "kdcom/capture/errors.hpp"
#include "kdcom/error.hpp"

namespace kdcom::capture::pcapng {

struct reader_options {
    // Blocks larger than this are refused as corrupt: a hostile length must not make the reader
    // buffer gigabytes. kdcom writers never exceed max_record_bytes plus a few dozen bytes.
    std::size_t max_block = 4u << 20;
};

class reader {
public:
    explicit reader(reader_options options = {}) : options_(options) {}

    // Appends input. Push a chunk, then call next() until it returns nothing: the reader keeps
    // only what it has not yet returned.
    void push(std::span<const std::uint8_t> bytes) {
        if (failed()) return;
        if (pos_ > 0 && pos_ >= buffer_.size() / 2) {
            buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(pos_));
            pos_ = 0;
        }
        buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    }

    // The next record, or nothing when more input is needed, at the end, or when an error stopped
    // the reader (then failed() is true).
    std::optional<record> next() {
        while (!failed()) {
            const std::span<const std::uint8_t> rest(buffer_.data() + pos_, buffer_.size() - pos_);
            const std::size_t length = block_length(rest);
            if (failed()) return std::nullopt;
            if (length == 0) {
                if (finished_) check_end();
                return std::nullopt;
            }
            auto result = parse_block(rest.first(length));
            if (failed()) return std::nullopt;
            pos_ += length;
            offset_ += length;
            if (result) return result;
        }
        return std::nullopt;
    }

    // Declares the end of the input. Call next() until it returns nothing after this: the last
    // records come out, then a partial block left over is a torn capture and no input at all is
    // not a capture.
    void finish() { finished_ = true; }

    bool failed() const { return static_cast<bool>(error_); }
    std::error_code error() const { return error_; }
    // "at offset N: what is wrong" (N: where the faulty block starts), or empty. Reads well after
    // error().message().
    const std::string& error_detail() const { return detail_; }
    // Bytes of input consumed in whole blocks.
    std::uint64_t offset() const { return offset_; }
    // What the current section's header said.
    const capture_info& info() const { return info_; }

private:
    void check_end() {
        if (pos_ < buffer_.size())
            fail(capture_errc::torn, std::to_string(buffer_.size() - pos_) + " bytes of the last block present");
        else if (!seen_section_)
            fail(capture_errc::not_pcapng, "the input is empty");
    }

    struct interface {
        std::uint16_t link_type = 0;
        std::uint8_t tsresol = 6;  // microseconds unless told otherwise
        std::int64_t tsoffset = 0;
    };

    void fail(capture_errc code, std::string why) {
        error_ = code;
        detail_ = "at offset " + std::to_string(offset_) + ": " + why;
    }

    std::uint32_t u32(const std::uint8_t* p) const {
        return big_endian_ ? boost::endian::load_big_u32(p) : boost::endian::load_little_u32(p);
    }
    std::uint16_t u16(const std::uint8_t* p) const {
        return big_endian_ ? boost::endian::load_big_u16(p) : boost::endian::load_little_u16(p);
    }

    // The total length of the block at the start of `rest` once all of it is present, 0 while
    // more input is needed (or after a failure).
    std::size_t block_length(std::span<const std::uint8_t> rest) {
        if (rest.size() < 12) return 0;
        const std::uint32_t type = boost::endian::load_little_u32(rest.data());  // palindromic for the SHB
        if (type == section_header_block) {
            const std::uint32_t magic = boost::endian::load_little_u32(rest.data() + 8);
            if (magic == byte_order_magic) big_endian_ = false;
            else if (magic == boost::endian::endian_reverse(byte_order_magic)) big_endian_ = true;
            else return fail(capture_errc::corrupt, "section header with an unknown byte-order magic"), 0;
            seen_section_ = true;
        } else if (!seen_section_) {
            return fail(capture_errc::not_pcapng, "the input does not start with a pcapng section header"), 0;
        }
        const std::uint32_t length = u32(rest.data() + 4);
        const std::size_t minimum = type == section_header_block ? 28 : block_overhead;
        if (length < minimum || length % 4 != 0)
            return fail(capture_errc::corrupt, "impossible block length " + std::to_string(length)), 0;
        if (length > options_.max_block)
            return fail(capture_errc::corrupt, "block of " + std::to_string(length) + " bytes, over the " +
                                                   std::to_string(options_.max_block) + "-byte limit"),
                   0;
        if (rest.size() < length) return 0;
        if (u32(rest.data() + length - 4) != length)
            return fail(capture_errc::corrupt, "trailing block length differs from the leading one"), 0;
        return length;
    }

    // Calls f(code, value) for each option in `options`; false (after fail()) if they overrun.
    template <class F>
    bool for_each_option(std::span<const std::uint8_t> options, F f) {
        std::size_t at = 0;
        while (at + 4 <= options.size()) {
            const std::uint16_t code = u16(options.data() + at);
            const std::uint16_t length = u16(options.data() + at + 2);
            if (code == opt_end) return true;
            if (padded(length) > options.size() - at - 4) {
                fail(capture_errc::corrupt, "an option runs past the end of its block");
                return false;
            }
            f(code, options.subspan(at + 4, length));
            at += 4 + padded(length);
        }
        return true;
    }

    std::optional<record> parse_block(std::span<const std::uint8_t> block) {
        const std::uint32_t type = u32(block.data());
        const auto body = block.subspan(8, block.size() - block_overhead);
        switch (type) {
        case section_header_block: parse_section(body); return std::nullopt;
        case interface_description_block: parse_interface(body); return std::nullopt;
        case enhanced_packet_block: return parse_packet(body);
        default: return std::nullopt;  // other blocks (statistics, name resolution, ...) say nothing we need
        }
    }

    void parse_section(std::span<const std::uint8_t> body) {
        if (u16(body.data() + 4) != 1)
            return fail(capture_errc::corrupt, "pcapng major version " + std::to_string(u16(body.data() + 4)) +
                                                   " (only 1 exists)");
        interfaces_.clear();
        info_ = {};
        for_each_option(body.subspan(16), [&](std::uint16_t code, std::span<const std::uint8_t> value) {
            const std::string text(value.begin(), value.end());
            if (code == shb_userappl) info_.application = text;
            if (code != opt_comment) return;
            std::size_t start = 0;
            while (start < text.size()) {
                const std::size_t end = std::min(text.find('\n', start), text.size());
                const std::string_view line = std::string_view(text).substr(start, end - start);
                if (line.starts_with(debugger_prefix)) info_.debugger = line.substr(debugger_prefix.size());
                if (line.starts_with(target_prefix)) info_.target = line.substr(target_prefix.size());
                start = end + 1;
            }
        });
    }

    void parse_interface(std::span<const std::uint8_t> body) {
        if (body.size() < 8) return fail(capture_errc::corrupt, "interface description too short");
        interface i;
        i.link_type = u16(body.data());
        for_each_option(body.subspan(8), [&](std::uint16_t code, std::span<const std::uint8_t> value) {
            if (code == if_tsresol && value.size() == 1) i.tsresol = value[0];
            if (code == if_tsoffset && value.size() == 8) {
                const std::uint64_t v = big_endian_ ? boost::endian::load_big_u64(value.data())
                                                    : boost::endian::load_little_u64(value.data());
                i.tsoffset = static_cast<std::int64_t>(v);
            }
        });
        if (!failed()) interfaces_.push_back(i);
    }

    std::optional<record> parse_packet(std::span<const std::uint8_t> body) {
        if (body.size() < 20) return fail(capture_errc::corrupt, "enhanced packet block too short"), std::nullopt;
        const std::uint32_t index = u32(body.data());
        if (index >= interfaces_.size())
            return fail(capture_errc::corrupt, "a packet on interface " + std::to_string(index) + ", never described"),
                   std::nullopt;
        const interface& i = interfaces_[index];
        if (i.link_type != link_type)
            return fail(capture_errc::foreign_link, "a packet of link type " + std::to_string(i.link_type) +
                                                        " (kdcom captures use " + std::to_string(link_type) + ")"),
                   std::nullopt;
        const std::uint64_t ticks = (std::uint64_t{u32(body.data() + 4)} << 32) | u32(body.data() + 8);
        const std::uint32_t captured = u32(body.data() + 12);
        if (captured > body.size() - 20 || padded(captured) > body.size() - 20)
            return fail(capture_errc::corrupt, "captured length " + std::to_string(captured) + " overruns its block"),
                   std::nullopt;
        std::uint32_t flags = 0;
        if (!for_each_option(body.subspan(20 + padded(captured)), [&](std::uint16_t code, std::span<const std::uint8_t> v) {
                if (code == epb_flags && v.size() == 4) flags = u32(v.data());
            }))
            return std::nullopt;
        record r;
        switch (flags & 3) {
        case flags_inbound: r.direction = flow::target_to_debugger; break;
        case flags_outbound: r.direction = flow::debugger_to_target; break;
        default: return fail(capture_errc::corrupt, "a packet without a direction (epb_flags)"), std::nullopt;
        }
        r.time_ns = to_nanoseconds(ticks, i);
        r.bytes.assign(body.begin() + 20, body.begin() + 20 + captured);
        return r;
    }

    // Timestamps count units of 10^-n s (tsresol bit 7 clear) or 2^-n s (bit 7 set) from
    // tsoffset seconds.
    // Unsigned arithmetic throughout: a hostile timestamp wraps, it never overflows.
    static std::uint64_t to_nanoseconds(std::uint64_t ticks, const interface& i) {
        constexpr std::uint64_t billion = 1'000'000'000;
        const unsigned n = i.tsresol & 0x7F;
        std::uint64_t ns = 0;
        if (i.tsresol & 0x80) {
            if (n < 64) {
                // Whole seconds, then the fraction (kept to 34 bits so that times 10^9 fits).
                std::uint64_t fraction = ticks & ((std::uint64_t{1} << n) - 1);
                unsigned bits = n;
                if (bits > 34) fraction >>= bits - 34, bits = 34;
                ns = (ticks >> n) * billion + ((fraction * billion) >> bits);
            }
        } else if (n <= 9) {
            ns = ticks;
            for (unsigned k = n; k < 9; ++k) ns *= 10;
        } else {
            ns = ticks;
            for (unsigned k = 9; k < n && ns > 0; ++k) ns /= 10;
        }
        return ns + static_cast<std::uint64_t>(i.tsoffset) * billion;
    }

    reader_options options_;
    std::vector<std::uint8_t> buffer_;
    std::size_t pos_ = 0;
    std::uint64_t offset_ = 0;
    bool big_endian_ = false;
    bool seen_section_ = false;
    bool finished_ = false;
    std::vector<interface> interfaces_;
    capture_info info_;
    std::error_code error_;
    std::string detail_;
};

// True when `start` (the first bytes of an input) is the start of a pcapng file.
inline bool looks_like_pcapng(std::span<const std::uint8_t> start) {
    return start.size() >= 4 && boost::endian::load_little_u32(start.data()) == section_header_block;
}

}  // namespace kdcom::capture::pcapng
