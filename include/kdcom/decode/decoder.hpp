// The incremental KDCOM frame decoder: bytes in any chunking in, events out.
//
// Usage:
//     kdcom::decode::decoder d;
//     d.push(bytes);                       // bytes stay valid until next() returns nullopt
//     while (auto ev = d.next()) handle(*ev);
//     ...
//     d.finish();                          // end of stream, or a read timeout
//     while (auto ev = d.next()) handle(*ev);
//
// Rules (docs/protocol.md has them with diagrams):
// - Leader: four identical leader bytes (0x30 data, 0x69 control). A different leader byte starts
//   a new run at 1; any other byte ends the run.
// - A 'b' between packets is a break-in event.
// - After the leader the header is validated (type valid for the leader, ByteCount within the
//   limit, control packets with ByteCount and Checksum 0); data packets then need their body, the
//   0xAA trailer and a matching checksum.
// - Any rejected candidate is reported as a framing_error and scanning resumes at the byte after
//   its first leader byte, so a real packet inside garbage or inside a false frame is never lost.
// - The events depend only on the byte sequence and where finish() was called, never on how the
//   bytes were split into push() calls.
//
// Memory: one buffer of one maximal frame (16 + max_body + 1 bytes), allocated by the constructor.
// Nothing is allocated per packet. Bytes are parsed where the caller put them; only the tail of
// an input that holds an incomplete frame is copied into the buffer.
//
// Cost: each byte is examined once, except the bytes of a rejected frame, which are rescanned; a
// hostile stream can therefore cost up to about (max frame / 16) examinations per byte, bounded.
//
// Threads: none inside; one decoder must not be used by two threads at once.
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "kdcom/decode/event.hpp"
#include "kdcom/error.hpp"
#include "kdcom/wire/checksum.hpp"
#include "kdcom/wire/constants.hpp"
#include "kdcom/wire/header.hpp"
#include "kdcom/wire/packet_type.hpp"

namespace kdcom::decode {

struct options {
    // Largest body accepted, in bytes. Windows never sends more than 4000; some peers do. Values
    // above 65535 (what ByteCount can express) are treated as 65535.
    std::size_t max_body = wire::default_max_body;
    // A control packet's ByteCount must be 0 (else `malformed_control_packet`); its Checksum is
    // ignored, as ReactOS and Windows ignore it (pykdclient on Python 3 sends 0x000080C2). Strict
    // decoding requires the Checksum to be 0 too. ByteCount stays checked: no sender sets it, and
    // without it four 'i's and a type in line noise would make a control packet, a false RESET
    // among them.
    bool strict_control = false;
};

class decoder {
public:
    explicit decoder(options opts = {})
        : max_body_(std::min(opts.max_body, wire::byte_count_limit)),
          strict_control_(opts.strict_control),
          capacity_(wire::data_packet_size(max_body_)),
          buffer_(std::make_unique<std::uint8_t[]>(capacity_)) {}

    decoder(decoder&&) noexcept = default;
    decoder& operator=(decoder&&) noexcept = default;

    // Gives the decoder the next bytes of the stream.
    // Precondition: next() has returned nullopt since the previous push() (all input consumed).
    // The bytes must stay valid and unchanged until next() returns nullopt.
    void push(std::span<const std::uint8_t> bytes) noexcept {
        assert(input_.empty() && "push() before the previous input was consumed");
        input_ = bytes;
    }
    // The bytes must outlive the events: a temporary vector would not.
    template <class Allocator>
    void push(std::vector<std::uint8_t, Allocator>&&) = delete;

    // Declares that nothing follows for now: the end of the stream or a read timeout. The events
    // that follow report an incomplete frame as truncated_packet (its bytes are rescanned), turn a
    // partial leader into garbage, and close the pending garbage run. Afterwards the decoder holds
    // nothing and accepts more bytes, which continue the stream at the next offset.
    void finish() noexcept { finishing_ = true; }

    // The next event, or nullopt when all pushed bytes are consumed or held as an incomplete frame.
    // Spans inside the event point into the pushed bytes or the decoder's buffer and stay valid
    // until the next call to any member of this decoder.
    std::optional<event> next() noexcept {
        while (pending_count_ == 0) {
            if (held() > 0) {
                if (!step_held()) break;
            } else if (!input_.empty()) {
                step_input();
            } else {
                if (finishing_) {
                    finishing_ = false;
                    close_garbage_run();
                }
                break;
            }
        }
        if (pending_count_ == 0) return std::nullopt;
        event e = pending_[pending_head_];
        pending_head_ = (pending_head_ + 1) % pending_.size();
        --pending_count_;
        return e;
    }

    // Drops every byte pushed but not yet consumed, and any incomplete frame or partial leader held,
    // as a receiver does with stale input after a RESET. Pending events are kept; the garbage run in
    // progress is closed. Returns how many bytes were dropped; offsets keep counting past them.
    std::size_t discard_input() noexcept {
        close_garbage_run();
        const std::size_t dropped = held() + input_.size();
        held_offset_ += dropped;
        held_begin_ = held_end_ = 0;
        input_ = {};
        finishing_ = false;
        return dropped;
    }

    // Bytes held in the internal buffer (an incomplete frame or partial leader). Never more than
    // max_frame_size().
    std::size_t buffered() const noexcept { return held(); }
    std::size_t max_frame_size() const noexcept { return capacity_; }
    std::size_t max_body() const noexcept { return max_body_; }

    // Stream offset of the next byte that push() will deliver.
    std::uint64_t stream_offset() const noexcept { return held_offset_ + held() + input_.size(); }

private:
    // What one parsing step over a contiguous window concluded.
    struct step_result {
        std::size_t consumed = 0;  // window bytes now accounted for (by queued events or garbage)
        std::size_t needed = 0;    // if nonzero: more bytes needed past the window's end
    };

    std::size_t held() const noexcept { return held_end_ - held_begin_; }

    // Parses the held bytes. Returns false when it needs bytes that have not been pushed yet.
    bool step_held() noexcept {
        const bool at_end = finishing_ && input_.empty();
        const step_result r =
            step(buffer_.get() + held_begin_, held(), held_offset_, at_end);
        held_begin_ += r.consumed;
        held_offset_ += r.consumed;
        if (r.needed == 0) return true;
        if (input_.empty()) return false;
        // Top up with exactly what the candidate needs, so the buffer never re-parses bytes that
        // could have been parsed in place.
        if (held_begin_ > 0) {
            std::memmove(buffer_.get(), buffer_.get() + held_begin_, held());
            held_end_ -= held_begin_;
            held_begin_ = 0;
        }
        const std::size_t n = std::min({r.needed, input_.size(), capacity_ - held_end_});
        std::memcpy(buffer_.get() + held_end_, input_.data(), n);
        held_end_ += n;
        input_ = input_.subspan(n);
        return true;
    }

    // Parses the caller's bytes in place; an incomplete tail is copied into the buffer.
    void step_input() noexcept {
        const step_result r = step(input_.data(), input_.size(), held_offset_, finishing_);
        held_offset_ += r.consumed;
        input_ = input_.subspan(r.consumed);
        if (r.needed != 0) {
            // The tail is a partial leader or an incomplete frame, so it is smaller than a frame.
            assert(input_.size() < capacity_);
            std::memcpy(buffer_.get(), input_.data(), input_.size());
            held_begin_ = 0;
            held_end_ = input_.size();
            input_ = {};
        }
    }

    // Parses p[0, n), the next bytes of the stream at stream offset `base`, until it has queued
    // at least one event or needs more bytes. With `at_end`, nothing follows the window: an
    // incomplete frame is truncated and a partial leader is garbage.
    step_result step(const std::uint8_t* p, std::size_t n, std::uint64_t base, bool at_end) noexcept {
        std::size_t i = 0;
        for (;;) {
            // Leader scan from i.
            std::size_t run = 0;
            std::size_t j = i;
            for (; j < n; ++j) {
                const std::uint8_t c = p[j];
                if (c == wire::data_leader_byte || c == wire::control_leader_byte) {
                    run = (run > 0 && p[j - 1] == c) ? run + 1 : 1;
                    if (run == wire::leader_size) break;
                } else {
                    run = 0;
                    if (c == wire::breakin_byte) {
                        add_garbage(base + i, j - i);
                        queue(breakin{base + j});
                        return {j + 1, 0};
                    }
                }
            }
            if (j == n) {
                if (at_end) {
                    add_garbage(base + i, n - i);
                    return {n, 0};
                }
                add_garbage(base + i, n - run - i);
                return {n - run, wire::leader_size - run};
            }

            const std::size_t s = j + 1 - wire::leader_size;  // frame start
            add_garbage(base + i, s - i);
            const std::size_t have = n - s;
            const std::uint8_t* f = p + s;
            framing_error err;
            err.offset = base + s;
            err.leader_byte = f[0];
            err.frame_bytes = have;

            if (have < wire::header_size) {
                if (!at_end) return {s, wire::header_size - have};
                err.error = errc::truncated_packet;
                return reject(err, s);
            }
            err.has_header = true;
            err.header = wire::load_header(std::span<const std::uint8_t, wire::header_size>(f, wire::header_size));
            const wire::packet_header& h = err.header;
            err.frame_bytes = wire::header_size;

            if (f[0] == wire::control_leader_byte) {
                if (!wire::is_control_type(h.type)) {
                    err.error = errc::unknown_packet_type;
                } else if (h.byte_count != 0 || (strict_control_ && h.checksum != 0)) {
                    err.error = errc::malformed_control_packet;
                } else {
                    queue(control_packet{base + s, h});
                    return {s + wire::control_packet_size, 0};
                }
                return reject(err, s);
            }

            if (!wire::is_data_type(h.type)) {
                err.error = errc::unknown_packet_type;
                return reject(err, s);
            }
            if (h.byte_count > max_body_) {
                err.error = errc::byte_count_too_large;
                return reject(err, s);
            }
            const std::size_t total = wire::data_packet_size(h.byte_count);
            if (have < total) {
                if (!at_end) return {s, total - have};
                err.frame_bytes = have;
                err.error = errc::truncated_packet;
                return reject(err, s);
            }
            err.frame_bytes = total;
            err.has_body = true;
            err.body = std::span<const std::uint8_t>(f + wire::header_size, h.byte_count);
            err.body_checksum = wire::checksum(err.body);
            if (f[total - 1] != wire::trailer_byte) {
                err.error = errc::bad_trailer;
                return reject(err, s);
            }
            if (err.body_checksum != h.checksum) {
                err.error = errc::bad_checksum;
                return reject(err, s);
            }
            queue(data_packet{base + s, h, err.body});
            return {s + total, 0};
        }
    }

    // A rejected candidate at window index s: its first byte is garbage, the rest is rescanned.
    step_result reject(const framing_error& err, std::size_t s) noexcept {
        queue(err);
        add_garbage(err.offset, 1);
        return {s + 1, 0};
    }

    void add_garbage(std::uint64_t offset, std::uint64_t length) noexcept {
        if (length == 0) return;
        if (garbage_length_ == 0) garbage_offset_ = offset;
        garbage_length_ += length;
    }

    void close_garbage_run() noexcept {
        if (garbage_length_ == 0) return;
        push_pending(garbage{garbage_offset_, garbage_length_});
        garbage_length_ = 0;
    }

    // Queues an event after the garbage run that precedes it.
    void queue(const event& e) noexcept {
        close_garbage_run();
        push_pending(e);
    }

    void push_pending(const event& e) noexcept {
        assert(pending_count_ < pending_.size());
        pending_[(pending_head_ + pending_count_) % pending_.size()] = e;
        ++pending_count_;
    }

    std::size_t max_body_;
    bool strict_control_;
    std::size_t capacity_;
    std::unique_ptr<std::uint8_t[]> buffer_;
    std::size_t held_begin_ = 0;  // held bytes are buffer_[held_begin_, held_end_)
    std::size_t held_end_ = 0;
    // Stream offset of the first unconsumed byte: buffer_[held_begin_] if anything is held,
    // otherwise input_[0].
    std::uint64_t held_offset_ = 0;
    std::span<const std::uint8_t> input_;
    bool finishing_ = false;

    std::uint64_t garbage_offset_ = 0;
    std::uint64_t garbage_length_ = 0;

    // At most two events come out of one step: a garbage run and what ended it.
    std::array<event, 2> pending_{};
    std::size_t pending_head_ = 0;
    std::size_t pending_count_ = 0;
};

}  // namespace kdcom::decode
