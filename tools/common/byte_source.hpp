// Reads a tool's input: a file of raw bytes, of hex text or a pcapng capture, or standard input
// ("-"), in chunks, so inputs of any size stream through in bounded memory.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sys/stat.h>

#include "kdcom/capture/pcapng_reader.hpp"
#include "kdcom/text/hex.hpp"
#include "tool_error.hpp"

namespace kdcom::tools {

// pcapng is never decoded here: a pcapng input is handed over as raw bytes, and format() says so.
enum class input_format { automatic, raw, hex, pcapng };

// True when `sample` (the start of an input) reads as hex text: only hex digits, whitespace and
// '#' comments, with at least one digit. A raw KDCOM stream fails this within its first header.
inline bool looks_like_hex_text(std::string_view sample) {
    bool in_comment = false;
    bool any_digit = false;
    for (char c : sample) {
        if (in_comment) {
            in_comment = c != '\n';
        } else if (c == '#') {
            in_comment = true;
        } else if (text::detail::hex_digit_value(c) >= 0) {
            any_digit = true;
        } else if (!text::detail::is_hex_space(c)) {
            return false;
        }
    }
    return any_digit;
}

class byte_source {
public:
    // Opens `path` ("-" for standard input). Throws tool_error if it cannot be read.
    byte_source(std::string path, input_format format) : path_(std::move(path)), format_(format) {
        if (path_ == "-") {
            file_ = stdin;
            display_name_ = "<stdin>";
        } else {
            file_ = std::fopen(path_.c_str(), "rb");
            if (!file_) throw tool_error(path_ + ": " + std::strerror(errno));
            owned_.reset(file_);
            display_name_ = path_;
            struct stat st {};
            if (::fstat(::fileno(file_), &st) == 0) {
                if (S_ISDIR(st.st_mode)) throw tool_error(path_ + ": is a directory");
                if (S_ISREG(st.st_mode)) size_ = static_cast<std::uint64_t>(st.st_size);
            }
        }
    }

    // Replaces `out` with the next decoded bytes. Returns false at the end of the input. Throws
    // tool_error on a read error or malformed hex text, after all bytes before it were returned.
    bool read(std::vector<std::uint8_t>& out) {
        out.clear();
        if (!deferred_error_.empty()) throw tool_error(deferred_error_);
        while (out.empty()) {
            if (eof_) return finish_hex(out);
            chunk_.resize(chunk_size);
            const std::size_t n = std::fread(chunk_.data(), 1, chunk_.size(), file_);
            if (n < chunk_.size()) {
                if (std::ferror(file_)) throw tool_error(display_name_ + ": read error: " + std::strerror(errno));
                eof_ = true;
            }
            chunk_.resize(n);
            consumed_ += n;
            if (format_ == input_format::automatic) {
                const std::span<const std::uint8_t> start(reinterpret_cast<const std::uint8_t*>(chunk_.data()),
                                                          chunk_.size());
                format_ = capture::pcapng::looks_like_pcapng(start) ? input_format::pcapng
                          : looks_like_hex_text(chunk_)             ? input_format::hex
                                                                    : input_format::raw;
            }
            if (format_ == input_format::raw || format_ == input_format::pcapng) {
                out.assign(chunk_.begin(), chunk_.end());
                if (eof_ && out.empty()) return false;
            } else {
                parse_text(chunk_, out);  // the parser carries a byte split between chunks
            }
        }
        return true;
    }

    input_format format() const { return format_; }
    const std::string& name() const { return display_name_; }
    std::uint64_t bytes_consumed() const { return consumed_; }  // of the file, not decoded bytes
    std::uint64_t size() const { return size_; }                // 0 if unknown (a pipe)

private:
    static constexpr std::size_t chunk_size = 1 << 16;

    bool finish_hex(std::vector<std::uint8_t>&) {
        if (format_ != input_format::hex || hex_finished_) return false;
        hex_finished_ = true;
        text::hex_position where;
        if (const std::error_code ec = hex_.finish(&where)) throw tool_error(position(where) + ec.message());
        return false;
    }

    // Appends the bytes of `text`; on malformed text, appends the bytes before the fault and
    // defers the error to the next read(), so that nothing good is lost.
    void parse_text(std::string_view text, std::vector<std::uint8_t>& out) {
        text::hex_position where;
        if (const std::error_code ec = hex_.feed(text, out, &where)) {
            deferred_error_ = position(where) + ec.message();
            if (out.empty()) throw tool_error(deferred_error_);
        }
    }

    std::string position(const text::hex_position& where) const {
        return display_name_ + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": ";
    }

    struct file_closer {
        void operator()(std::FILE* f) const { std::fclose(f); }
    };

    std::string path_;
    std::string display_name_;
    input_format format_;
    std::FILE* file_ = nullptr;
    std::unique_ptr<std::FILE, file_closer> owned_;
    std::uint64_t size_ = 0;
    std::uint64_t consumed_ = 0;
    bool eof_ = false;
    std::string chunk_;
    text::hex_parser hex_;  // hex text: linear, and nothing kept but a byte in progress
    bool hex_finished_ = false;
    std::string deferred_error_;
};

}  // namespace kdcom::tools
