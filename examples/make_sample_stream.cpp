// Writes examples/sample-session.hex: a short, made-up kernel debugging session as hex text, built
// with kdcom's own encoder. Both directions appear in one stream, in the order the bytes were sent,
// which is what a tap on the wire sees and what kdcom-dump decodes.
//
// The story: line noise, the debugger's RESET and the target's answer, a breakpoint state change,
// GetVersion, a memory read, a write that arrives corrupted and is resent, Continue, a DbgPrint,
// and a break-in that stops the target again. Message bodies follow the public DBGKD_* layouts
// closely enough for a reader to recognise them; the ids follow the alternating-bit rules.
//
// Usage: make-sample-stream > examples/sample-session.hex   (a test checks the file is current)
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <boost/endian/conversion.hpp>

#include "kdcom/text/hex.hpp"
#include "kdcom/wire/encoder.hpp"

namespace {

using namespace kdcom::wire;
using bytes = std::vector<std::uint8_t>;

constexpr std::uint32_t id0 = initial_packet_id;
constexpr std::uint32_t id1 = initial_packet_id | 1;
constexpr std::uint64_t breakpoint_pc = 0xFFFFF8025C1E2F40ull;

// Little-endian field writer over a fixed-size message.
struct message {
    explicit message(std::size_t size) : b(size, 0) {}
    message& u16(std::size_t at, std::uint16_t v) { boost::endian::store_little_u16(&b[at], v); return *this; }
    message& u32(std::size_t at, std::uint32_t v) { boost::endian::store_little_u32(&b[at], v); return *this; }
    message& u64(std::size_t at, std::uint64_t v) { boost::endian::store_little_u64(&b[at], v); return *this; }
    message& raw(std::size_t at, const bytes& v) { std::memcpy(&b[at], v.data(), v.size()); return *this; }
    bytes b;
};

// DBGKD_WAIT_STATE_CHANGE64 for a breakpoint exception (0xF0 bytes).
bytes breakpoint_state_change() {
    return message(0xF0)
        .u32(0x00, 0x3030)            // NewState: DbgKdExceptionStateChange
        .u16(0x04, 6)                 // ProcessorLevel
        .u16(0x06, 0)                 // Processor
        .u32(0x08, 1)                 // NumberProcessors
        .u64(0x10, 0xFFFFA70B1C2D4080ull)  // Thread
        .u64(0x18, breakpoint_pc)     // ProgramCounter
        .u32(0x20, 0x80000003)        // ExceptionCode: STATUS_BREAKPOINT
        .u64(0x30, breakpoint_pc)     // ExceptionAddress
        .u32(0x38, 1)                 // NumberParameters
        .u32(0xB8, 1)                 // FirstChance
        .u32(0xD0, 0x86)              // ControlReport.EFlags
        .u16(0xD4, 16)                // ControlReport.InstructionCount
        .raw(0xD8, {0xCC, 0xC3, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC,
                    0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00})  // int 3; ret; padding
        .u16(0xE8, 0x10)              // SegCs
        .u16(0xEA, 0x2B)              // SegDs
        .u16(0xEC, 0x2B)              // SegEs
        .u16(0xEE, 0x53)              // SegFs
        .b;
}

// A DBGKD_MANIPULATE_STATE64 header (0x38 bytes) for `api`.
message manipulate(std::uint32_t api) { return std::move(message(0x38).u32(0x00, api)); }

constexpr std::uint32_t get_version_api = 0x3146;
constexpr std::uint32_t read_virtual_memory_api = 0x3130;
constexpr std::uint32_t write_virtual_memory_api = 0x3131;
constexpr std::uint32_t continue2_api = 0x313C;
constexpr std::uint32_t print_string_api = 0x3230;

class sample_writer {
public:
    void comment(const std::string& text) { out_ += "\n# " + text + "\n"; }

    void raw(const bytes& b) { write_lines(b); }

    void data(const char* direction, packet_type type, std::uint32_t id, const bytes& header,
              const bytes& payload = {}) {
        out_ += "# " + std::string(direction) + " " + std::string(packet_type_name(type)) + " id " +
                hex32(id) + ", " + std::to_string(header.size() + payload.size()) + " body bytes\n";
        write_lines(data_bytes(type, id, header, payload));
    }

    static bytes data_bytes(packet_type type, std::uint32_t id, const bytes& header, const bytes& payload) {
        bytes frame(data_packet_size(header.size() + payload.size()));
        std::error_code ec;
        frame.resize(encode_data_packet(frame, type, id, header, payload, ec));
        return frame;
    }

    void control(const char* direction, packet_type type, std::uint32_t id) {
        bytes frame(control_packet_size);
        std::error_code ec;
        encode_control_packet(frame, type, id, ec);
        out_ += "# " + std::string(direction) + " " + std::string(packet_type_name(type)) + " id " +
                hex32(id) + "\n";
        write_lines(frame);
    }

    const std::string& text() const { return out_; }

private:
    static std::string hex32(std::uint32_t v) {
        char s[16];
        std::snprintf(s, sizeof s, "0x%08X", v);
        return s;
    }

    void write_lines(const bytes& b) {
        for (std::size_t i = 0; i < b.size(); i += 16) {
            for (std::size_t j = i; j < b.size() && j < i + 16; ++j) {
                if (j > i) out_ += ' ';
                out_ += kdcom::text::to_hex(std::span(&b[j], 1));
            }
            out_ += '\n';
        }
    }

    std::string out_;
};

}  // namespace

int main() {
    sample_writer w;
    const char* d2t = "debugger -> target:";
    const char* t2d = "target -> debugger:";

    std::printf("# A made-up KDCOM session, both directions in sending order. Generated by\n"
                "# examples/make_sample_stream.cpp; decode it with: kdcom-dump %s\n",
                "examples/sample-session.hex");

    w.comment("Line noise before the link is up, with stray leader bytes.");
    w.raw({0x00, 0xFF, 0x0D, 0x0A, 0x30, 0x30, 0x69, 0x42, 0x4F, 0x4F, 0x54});

    w.comment("The debugger connects and asks for a reset; the target answers and both ids restart.");
    w.control(d2t, packet_type::reset, 0x00008080);
    w.control(t2d, packet_type::reset, 0);

    w.comment("The target reports a breakpoint; the debugger acknowledges it.");
    w.data(t2d, packet_type::state_change64, id0, breakpoint_state_change());
    w.control(d2t, packet_type::acknowledge, id0);

    w.comment("GetVersion.");
    w.data(d2t, packet_type::state_manipulate, id0, manipulate(get_version_api).b);
    w.control(t2d, packet_type::acknowledge, id0);
    w.data(t2d, packet_type::state_manipulate, id1,
           manipulate(get_version_api)
               .u16(0x10, 15)         // MajorVersion (free build)
               .u16(0x12, 19041)      // MinorVersion (build number)
               .u16(0x14, 0x0006)     // ProtocolVersion 6
               .u16(0x18, 0x8664)     // MachineType: AMD64
               .u16(0x1A, 0x030C)     // MaxPacketType 12, MaxStateChange 3
               .u16(0x1C, 0x0033)     // MaxManipulate 0x33
               .u64(0x20, 0xFFFFF8025C000000ull)  // KernBase
               .u64(0x28, 0xFFFFF8025CC2A2D0ull)  // PsLoadedModuleList
               .b);
    w.control(d2t, packet_type::acknowledge, id1);

    w.comment("Read 32 bytes at the breakpoint.");
    w.data(d2t, packet_type::state_manipulate, id1,
           manipulate(read_virtual_memory_api).u64(0x10, breakpoint_pc).u32(0x18, 32).b);
    w.control(t2d, packet_type::acknowledge, id1);
    const bytes code{0xCC, 0xC3, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0x48, 0x83, 0xEC, 0x28,
                     0xE8, 0x1B, 0x00, 0x00, 0x00, 0x48, 0x83, 0xC4, 0x28, 0xC3, 0xCC, 0xCC,
                     0x48, 0x89, 0x5C, 0x24, 0x08, 0x57, 0x48, 0x83};
    w.data(t2d, packet_type::state_manipulate, id0,
           manipulate(read_virtual_memory_api).u64(0x10, breakpoint_pc).u32(0x18, 32).u32(0x1C, 32).b,
           code);
    w.control(d2t, packet_type::acknowledge, id0);

    w.comment("The debugger writes a NOP over the breakpoint; one byte of the body is damaged on");
    w.comment("the wire, so the checksum fails and the target asks for a resend.");
    const bytes write_header =
        manipulate(write_virtual_memory_api).u64(0x10, breakpoint_pc).u32(0x18, 1).b;
    bytes damaged = w.data_bytes(packet_type::state_manipulate, id0, write_header, {0x90});
    damaged[header_size + 0x38] ^= 0x10;  // the payload byte 0x90 arrives as 0x80
    w.raw(damaged);
    w.control(t2d, packet_type::resend, 0);
    w.data(d2t, packet_type::state_manipulate, id0, write_header, {0x90});
    w.control(t2d, packet_type::acknowledge, id0);
    w.data(t2d, packet_type::state_manipulate, id1,
           manipulate(write_virtual_memory_api).u64(0x10, breakpoint_pc).u32(0x18, 1).u32(0x1C, 1).b);
    w.control(d2t, packet_type::acknowledge, id1);

    w.comment("Continue; the target runs and prints a line.");
    w.data(d2t, packet_type::state_manipulate, id1,
           manipulate(continue2_api).u32(0x10, 0x00010002).b);  // DBG_CONTINUE
    w.control(t2d, packet_type::acknowledge, id1);
    const std::string line = "kdcom sample: driver loaded\n";
    w.data(t2d, packet_type::debug_io, id0,
           message(0x10).u32(0x00, print_string_api).u32(0x08, static_cast<std::uint32_t>(line.size())).b,
           bytes(line.begin(), line.end()));
    w.control(d2t, packet_type::acknowledge, id0);

    w.comment("The user presses Ctrl+Break: the debugger sends 'b'; the target stops again.");
    w.raw({breakin_byte});
    bytes stop = breakpoint_state_change();
    boost::endian::store_little_u32(&stop[0x20], 0x80000003);
    w.data(t2d, packet_type::state_change64, id1, stop);
    w.control(d2t, packet_type::acknowledge, id1);

    std::fputs(w.text().c_str(), stdout);
    return 0;
}
