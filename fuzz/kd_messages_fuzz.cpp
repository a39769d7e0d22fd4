// libFuzzer target for the KD message layer: any bytes, read as each kind of message header. A
// header that decodes must encode to a header that decodes to the same values, and nothing may
// read past the bytes given (ASan).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "kdcom/kd/debug_io.hpp"
#include "kdcom/kd/file_io.hpp"
#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/state_change.hpp"

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "%s did not survive encoding and decoding again\n", what);
    std::abort();
}

// Decodes, encodes what it got, decodes that, and compares the two with `same`.
template <class Decode, class Encode, class Same>
void round_trip(std::span<const std::uint8_t> input, std::size_t size, Decode decode, Encode encode, Same same,
                const char* what) {
    const auto first = decode(input);
    if (!first) return;
    std::vector<std::uint8_t> out(size);
    if (encode(*first, std::span<std::uint8_t>(out)) != size) fail(what);
    const auto second = decode(std::span<const std::uint8_t>(out));
    if (!second || !same(*first, *second)) fail(what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> input(data, size);
    using namespace kdcom::kd;
    round_trip(input, manipulate_header_size, decode_manipulate, encode_manipulate,
               [](const manipulate_header& a, const manipulate_header& b) {
                   return a.api == b.api && a.return_status == b.return_status && a.memory.address == b.memory.address &&
                          a.memory.transfer_count == b.memory.transfer_count && a.context_flags == b.context_flags &&
                          a.continuation.status == b.continuation.status && a.continuation.dr7 == b.continuation.dr7 &&
                          a.version.kern_base == b.version.kern_base && a.io.address == b.io.address &&
                          a.io.data_size == b.io.data_size && a.io.value == b.io.value && a.msr.msr == b.msr.msr &&
                          a.msr.value == b.msr.value && a.breakpoint.address == b.breakpoint.address &&
                          a.breakpoint.handle == b.breakpoint.handle && is_reply_to(a, b);
               },
               "a manipulate header");
    round_trip(input, state_change_header_size, decode_state_change, encode_state_change,
               [](const state_change_header& a, const state_change_header& b) {
                   return a.new_state == b.new_state && a.thread == b.thread && a.program_counter == b.program_counter &&
                          a.exception.code == b.exception.code && a.exception.information == b.exception.information &&
                          a.load_symbols.base_of_dll == b.load_symbols.base_of_dll && a.dr7 == b.dr7 &&
                          a.instruction_stream == b.instruction_stream && a.report_flags == b.report_flags;
               },
               "a state change header");
    round_trip(input, debug_io_header_size, decode_debug_io, encode_debug_io,
               [](const debug_io_header& a, const debug_io_header& b) {
                   return a.api == b.api && a.length_of_string == b.length_of_string &&
                          a.length_of_string_read == b.length_of_string_read;
               },
               "a debug I/O header");
    round_trip(input, file_io_header_size, decode_file_io, encode_file_io,
               [](const file_io_header& a, const file_io_header& b) {
                   return a.api == b.api && a.status == b.status && a.handle == b.handle && a.length == b.length &&
                          a.create_options == b.create_options;
               },
               "a file I/O header");
    return 0;
}
