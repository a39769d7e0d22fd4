// What kdcom-replay plays: the data packets of a pcapng capture (its conversation: each packet
// once, in order) or of a packet script, told apart by content.
//
// A packet script is JSON Lines, one packet per line:
//   {"dir":"d2t","type":2,"body":"3146..."}
// dir: "d2t" (debugger to target) or "t2d"; type: a data packet type; body: hex (may be empty).
// Other keys are ignored. Blank lines are skipped, and so are lines with "control":true and lines
// whose "kind" is not "data": kdcom-dump --json output is a script as it stands.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../common/byte_source.hpp"
#include "../common/capture_reading.hpp"
#include "../common/tool_error.hpp"
#include "kdcom/capture/conversation.hpp"
#include "kdcom/text/hex.hpp"
#include "kdcom/wire/constants.hpp"

namespace kdcom::tools {

struct script_packet {
    capture::flow direction{};
    wire::packet_type type{};
    std::vector<std::uint8_t> body;
    std::string origin;  // where it came from, for messages: "FILE:LINE" or "FILE, record N"
};

namespace detail {

// One line's object, already parsed.
inline script_packet parse_script_line(const nlohmann::json& j, const std::string& where) {
    script_packet p;
    p.origin = where;
    const auto dir = j.find("dir");
    if (dir == j.end() || !dir->is_string() || (*dir != "d2t" && *dir != "t2d"))
        throw tool_error(where + ": \"dir\" must be \"d2t\" or \"t2d\"");
    p.direction = *dir == "d2t" ? capture::flow::debugger_to_target : capture::flow::target_to_debugger;
    const auto type = j.find("type");
    if (type == j.end() || !type->is_number_unsigned() || *type > 0xFFFF ||
        !wire::is_data_type(static_cast<wire::packet_type>(type->get<unsigned>())))
        throw tool_error(where + ": \"type\" must be the number of a data packet type (1, 2, 3, 7, 9, 10 or 11)");
    p.type = static_cast<wire::packet_type>(type->get<unsigned>());
    const auto body = j.find("body");
    if (body == j.end() || !body->is_string()) throw tool_error(where + ": \"body\" must be a hex string");
    if (const auto ec = text::parse_hex(body->get<std::string>(), p.body))
        throw tool_error(where + ": \"body\": " + ec.message());
    if (p.body.size() > wire::default_max_body)
        throw tool_error(where + ": a body of " + std::to_string(p.body.size()) + " bytes, over the " +
                         std::to_string(wire::default_max_body) + "-byte packet limit");
    return p;
}

// One line of a script: its packet, nothing for a line to skip (blank, a control packet, not data),
// or tool_error saying what is wrong, after `where` (replay_script_fuzz feeds it anything).
inline std::optional<script_packet> parse_script_text(std::string_view line, const std::string& where) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return std::nullopt;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw tool_error(where + ": not a JSON object");
    if (const auto c = j.find("control"); c != j.end() && *c == true) return std::nullopt;
    if (const auto k = j.find("kind"); k != j.end() && *k != "data") return std::nullopt;
    return parse_script_line(j, where);
}

}  // namespace detail

// The packets of FILE ("-": standard input), one at a time and in order, however long FILE is: a
// chunk of it is read only when the packets before have been taken, so memory stays bounded by a
// chunk (a line of a script may be up to 1 MiB) whatever the file's size. Not thread-safe.
class script_reader {
public:
    // Opens FILE and tells what it holds. Throws tool_error (exit status 2) if it cannot be read,
    // is empty, or is neither a capture nor a packet script.
    explicit script_reader(const std::string& path) : source_(path, input_format::automatic) {
        if (!source_.read(bytes_)) throw tool_error(source_.name() + ": empty: neither a capture nor a packet script");
        const auto first = std::find_if(bytes_.begin(), bytes_.end(), [](std::uint8_t c) { return !std::isspace(c); });
        if (source_.format() == input_format::pcapng) {
            kind_ = "capture";
            records_.emplace(source_, bytes_);
        } else if (source_.format() == input_format::raw && first != bytes_.end() && *first == '{') {
            kind_ = "packet script";
            take_lines();
        } else {
            throw tool_error(source_.name() + ": neither a pcapng capture nor a packet script (JSON Lines)");
        }
    }
    script_reader(const script_reader&) = delete;
    script_reader& operator=(const script_reader&) = delete;

    // The next packet, or nothing at the end. Throws tool_error (exit status 2) at the first line
    // that is not a packet, naming the file, the line and what is wrong, after every packet before
    // it was returned. A capture cut short or damaged further on is not an error: its packets
    // before the damage come out, and damage() says what was left out.
    std::optional<script_packet> next() {
        while (ready_.empty()) {
            if (!bad_line_.empty()) throw tool_error(bad_line_);
            if (!read_more()) return std::nullopt;
        }
        auto p = std::move(ready_.front());
        ready_.pop_front();
        return p;
    }

    const std::string& kind() const { return kind_; }  // "capture" or "packet script"
    const std::string& name() const { return source_.name(); }
    std::uint64_t folded() const { return talk_.retransmissions_folded(); }  // a capture's retransmissions so far
    const std::string& damage() const { return damage_; }  // once next() returned nothing
    std::uint64_t bytes_read() const { return source_.bytes_consumed(); }
    std::uint64_t size() const { return source_.size(); }  // 0 if unknown (a pipe)

private:
    // Queues the packets of the next record or chunk; false at the end of the input.
    bool read_more() {
        if (ended_) return false;
        if (records_) {
            if (const auto r = records_->next()) {
                talk_.push(*r);
                queue_conversation(", record " + std::to_string(records_->records()));
                return true;
            }
            // A capture cut short (its writer killed) or damaged further on: the whole records
            // before the damage are a conversation still worth replaying.
            if (!records_->error().empty()) {
                if (records_->records() == 0) throw tool_error(records_->error());
                damage_ = records_->error();
            }
            talk_.finish();
            queue_conversation("");
        } else if (source_.read(bytes_)) {
            take_lines();
            return true;
        } else if (!pending_.empty()) {
            bytes_.assign({'\n'});  // a last line without a newline
            take_lines();
        }
        ended_ = true;
        return true;
    }

    void queue_conversation(const std::string& where) {
        while (auto p = talk_.next())
            ready_.push_back({p->direction, p->type, std::move(p->body), source_.name() + where});
    }

    // The whole lines of what was read; the rest waits for the next chunk. A bad line ends the
    // script there: the packets before it are played first, then next() says what is wrong.
    void take_lines() {
        pending_.append(bytes_.begin(), bytes_.end());
        std::size_t start = 0;
        try {
            for (std::size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1)
                take_line(std::string_view(pending_).substr(start, nl - start));
            if (pending_.size() - start > max_line) throw tool_error(source_.name() + ": a line longer than 1 MiB");
        } catch (const tool_error& e) {
            bad_line_ = e.what();
            ended_ = true;
        }
        pending_.erase(0, start);
    }

    void take_line(std::string_view line) {
        ++line_number_;
        if (auto p = detail::parse_script_text(line, source_.name() + ":" + std::to_string(line_number_)))
            ready_.push_back(std::move(*p));
    }

    static constexpr std::size_t max_line = 1u << 20;

    byte_source source_;
    std::vector<std::uint8_t> bytes_;
    std::string kind_;
    std::deque<script_packet> ready_;           // at most one chunk's or one record's packets
    std::optional<capture_records> records_;    // a capture
    capture::conversation talk_;                // a capture
    std::string pending_;                       // a script: a line not yet ended
    std::size_t line_number_ = 0;               // a script
    std::string bad_line_;                      // a script: why it ends early
    std::string damage_;                        // a capture: why it ends early
    bool ended_ = false;
};

// What a whole FILE holds, read through once (for the totals a replay announces, and to refuse a
// bad script before anything is played).
struct script_survey {
    std::string kind;
    std::uint64_t packets = 0, down = 0, body_bytes = 0, folded = 0;
    std::string damage;
};

inline script_survey survey_script(const std::string& path) {
    script_reader reader(path);
    script_survey s;
    s.kind = reader.kind();
    while (const auto p = reader.next()) {
        ++s.packets;
        s.down += p->direction == capture::flow::debugger_to_target;
        s.body_bytes += p->body.size();
    }
    s.folded = reader.folded();
    s.damage = reader.damage();
    if (s.packets == 0) throw tool_error(reader.name() + ": holds no data packets to replay");
    return s;
}

}  // namespace kdcom::tools
