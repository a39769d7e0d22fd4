// The AMD64 CONTEXT record (0x4D0 bytes): what GetContext returns after its manipulate header and
// SetContext sends, with every register by name. Layout from the public winnt.h (_CONTEXT for
// AMD64), checked member by member below; the target fills what ContextFlags asks for.
//
//     kd::context_amd64 c(reply_data);           // copies; short data leaves the rest zero
//     c.get(kd::amd64::rip);  c.set(*kd::amd64::find_register("rax"), 1);
//     c.bytes()                                   // to send back with SetContext
#pragma once

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include <boost/endian/buffers.hpp>

namespace kdcom::kd {

namespace wire_layout {
struct context_amd64 {
    using u16 = boost::endian::little_uint16_buf_t;
    using u32 = boost::endian::little_uint32_buf_t;
    using u64 = boost::endian::little_uint64_buf_t;
    u64 p_home[6];
    u32 context_flags, mx_csr;
    u16 seg_cs, seg_ds, seg_es, seg_fs, seg_gs, seg_ss;
    u32 eflags;
    u64 dr0, dr1, dr2, dr3, dr6, dr7;
    u64 rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi;
    u64 r8, r9, r10, r11, r12, r13, r14, r15;
    u64 rip;
    std::uint8_t flt_save[512];         // XMM_SAVE_AREA32
    std::uint8_t vector_register[26 * 16];
    u64 vector_control, debug_control;
    u64 last_branch_to_rip, last_branch_from_rip, last_exception_to_rip, last_exception_from_rip;
};
static_assert(offsetof(context_amd64, context_flags) == 0x30);
static_assert(offsetof(context_amd64, seg_cs) == 0x38);
static_assert(offsetof(context_amd64, seg_ss) == 0x42);
static_assert(offsetof(context_amd64, eflags) == 0x44);
static_assert(offsetof(context_amd64, dr0) == 0x48);
static_assert(offsetof(context_amd64, dr7) == 0x70);
static_assert(offsetof(context_amd64, rax) == 0x78);
static_assert(offsetof(context_amd64, rsp) == 0x98);
static_assert(offsetof(context_amd64, r8) == 0xB8);
static_assert(offsetof(context_amd64, r15) == 0xF0);
static_assert(offsetof(context_amd64, rip) == 0xF8);
static_assert(offsetof(context_amd64, flt_save) == 0x100);
static_assert(offsetof(context_amd64, vector_register) == 0x300);
static_assert(offsetof(context_amd64, vector_control) == 0x4A0);
static_assert(offsetof(context_amd64, last_exception_from_rip) == 0x4C8);
static_assert(sizeof(context_amd64) == 0x4D0, "CONTEXT on AMD64 is 0x4D0 bytes");
}  // namespace wire_layout

namespace amd64 {

// ContextFlags: which parts of the record a GetContext fills or a SetContext sets.
namespace context_flags {
inline constexpr std::uint32_t amd64 = 0x00100000;
inline constexpr std::uint32_t control = amd64 | 0x1;  // SegSs, Rsp, SegCs, Rip, EFlags
inline constexpr std::uint32_t integer = amd64 | 0x2;  // Rax..R15 but Rsp
inline constexpr std::uint32_t segments = amd64 | 0x4;
inline constexpr std::uint32_t floating_point = amd64 | 0x8;
inline constexpr std::uint32_t debug_registers = amd64 | 0x10;
inline constexpr std::uint32_t full = control | integer | floating_point;
inline constexpr std::uint32_t all = control | integer | segments | floating_point | debug_registers;
}  // namespace context_flags

// A register: its name as WinDbg writes it, where it is in the record, and its width in bytes.
struct register_info {
    std::string_view name;
    std::uint16_t offset;
    std::uint8_t size;
};

#define KDCOM_AMD64_REGISTER(name) \
    inline constexpr register_info name{#name, offsetof(wire_layout::context_amd64, name), \
                                        sizeof(wire_layout::context_amd64::name)};
KDCOM_AMD64_REGISTER(rax)
KDCOM_AMD64_REGISTER(rbx)
KDCOM_AMD64_REGISTER(rcx)
KDCOM_AMD64_REGISTER(rdx)
KDCOM_AMD64_REGISTER(rsi)
KDCOM_AMD64_REGISTER(rdi)
KDCOM_AMD64_REGISTER(rip)
KDCOM_AMD64_REGISTER(rsp)
KDCOM_AMD64_REGISTER(rbp)
KDCOM_AMD64_REGISTER(r8)
KDCOM_AMD64_REGISTER(r9)
KDCOM_AMD64_REGISTER(r10)
KDCOM_AMD64_REGISTER(r11)
KDCOM_AMD64_REGISTER(r12)
KDCOM_AMD64_REGISTER(r13)
KDCOM_AMD64_REGISTER(r14)
KDCOM_AMD64_REGISTER(r15)
KDCOM_AMD64_REGISTER(eflags)
KDCOM_AMD64_REGISTER(seg_cs)
KDCOM_AMD64_REGISTER(seg_ss)
KDCOM_AMD64_REGISTER(seg_ds)
KDCOM_AMD64_REGISTER(seg_es)
KDCOM_AMD64_REGISTER(seg_fs)
KDCOM_AMD64_REGISTER(seg_gs)
KDCOM_AMD64_REGISTER(dr0)
KDCOM_AMD64_REGISTER(dr1)
KDCOM_AMD64_REGISTER(dr2)
KDCOM_AMD64_REGISTER(dr3)
KDCOM_AMD64_REGISTER(dr6)
KDCOM_AMD64_REGISTER(dr7)
KDCOM_AMD64_REGISTER(mx_csr)
#undef KDCOM_AMD64_REGISTER

// In the order WinDbg's `r` shows them.
inline constexpr std::array<register_info, 31> registers{
    rax, rbx, rcx, rdx, rsi, rdi, rip, rsp, rbp, r8, r9, r10, r11, r12, r13, r14, r15, eflags,
    seg_cs, seg_ss, seg_ds, seg_es, seg_fs, seg_gs, dr0, dr1, dr2, dr3, dr6, dr7, mx_csr};

// The register called `name` ("rip", "RIP", WinDbg's "efl", "cs", "mxcsr"); nullopt if none is.
inline std::optional<register_info> find_register(std::string_view name) noexcept {
    std::array<char, 8> lower{};
    if (name.empty() || name.size() > lower.size()) return std::nullopt;
    for (std::size_t i = 0; i < name.size(); ++i)
        lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
    const std::string_view n(lower.data(), name.size());
    struct alias {
        std::string_view windbg;
        const register_info& info;
    };
    static constexpr alias aliases[] = {{"efl", eflags}, {"cs", seg_cs}, {"ss", seg_ss}, {"ds", seg_ds},
                                        {"es", seg_es},  {"fs", seg_fs}, {"gs", seg_gs}, {"mxcsr", mx_csr}};
    for (const auto& a : aliases)
        if (a.windbg == n) return a.info;
    for (const auto& r : registers)
        if (r.name == n) return r;
    return std::nullopt;
}

}  // namespace amd64

class context_amd64 {
public:
    static constexpr std::size_t size = sizeof(wire_layout::context_amd64);

    context_amd64() = default;
    // The record from GetContext's reply data; a shorter one leaves the rest zero.
    explicit context_amd64(std::span<const std::uint8_t> record) noexcept {
        std::copy_n(record.begin(), std::min(record.size(), size), bytes_.begin());
    }

    std::uint64_t get(const amd64::register_info& r) const noexcept {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < r.size; ++i) v |= std::uint64_t{bytes_[r.offset + i]} << (8 * i);
        return v;
    }
    // Stores the low r.size bytes of `value`.
    void set(const amd64::register_info& r, std::uint64_t value) noexcept {
        for (std::size_t i = 0; i < r.size; ++i) bytes_[r.offset + i] = static_cast<std::uint8_t>(value >> (8 * i));
    }

    std::uint32_t flags() const noexcept { return static_cast<std::uint32_t>(get({"", 0x30, 4})); }
    void set_flags(std::uint32_t f) noexcept { set({"", 0x30, 4}, f); }

    std::span<const std::uint8_t, size> bytes() const noexcept { return bytes_; }

private:
    std::array<std::uint8_t, size> bytes_{};
};

}  // namespace kdcom::kd
