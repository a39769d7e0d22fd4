// The KD message layer: every field at the offset the Windows layouts put it (checked against a
// real x64 breakpoint state change and against hand-placed bytes), encode/decode round trips, and
// a name for every API number.
#include <gtest/gtest.h>

#include "kdcom/kd/api.hpp"
#include "kdcom/kd/debug_io.hpp"
#include "kdcom/kd/file_io.hpp"
#include "kdcom/kd/client_errors.hpp"
#include "kdcom/kd/context_amd64.hpp"
#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/status.hpp"
#include "kdcom/endpoint/events.hpp"
#include "kdcom/kd/state_change.hpp"
#include "support/decode_helpers.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using wire::packet_type;

std::uint64_t le(const bytes& b, std::size_t offset, int size) {
    std::uint64_t v = 0;
    for (int i = size - 1; i >= 0; --i) v = v << 8 | b[offset + static_cast<std::size_t>(i)];
    return v;
}

TEST(KdStateChange, DecodesARealX64BreakpointStateChange) {
    bytes packet = from_hex(read_file(breakpoint_vector_path()));
    const bytes body(packet.begin() + 16, packet.end());
    ASSERT_EQ(body.size(), kd::state_change_header_size);
    const auto h = kd::decode_state_change(body);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->new_state, kd::state_change::exception);
    EXPECT_EQ(h->processor_level, 6);
    EXPECT_EQ(h->processor, 1);
    EXPECT_EQ(h->number_processors, 2u);
    EXPECT_EQ(h->thread, 0xffff8c85bc229800u);
    EXPECT_EQ(h->program_counter, 0xfffff802c55e3380u);
    EXPECT_EQ(h->exception.code, 0x80000003u) << "STATUS_BREAKPOINT";
    EXPECT_EQ(h->exception.address, h->program_counter);
    EXPECT_EQ(h->exception.number_parameters, 1u);
    EXPECT_TRUE(h->exception.first_chance);
    EXPECT_EQ(h->dr6, 0xfffe0ff0u);
    EXPECT_EQ(h->dr7, 0x400u);
    EXPECT_EQ(h->eflags, 0x86u);
    EXPECT_EQ(h->instruction_count, 16);
    EXPECT_EQ(h->report_flags, 3) << "segments included, standard CS";
    EXPECT_EQ(h->instruction_stream[0], 0xCC) << "int3";
    EXPECT_EQ(h->seg_cs, 0x10);
    EXPECT_EQ(h->seg_ds, 0x2B);
    EXPECT_EQ(h->seg_fs, 0x53);

    bytes again(kd::state_change_header_size);
    ASSERT_EQ(kd::encode_state_change(*h, again), again.size());
    EXPECT_EQ(again.size(), body.size());
    // Encoding keeps every field it decoded; the exception parameters beyond NumberParameters and
    // the padding are what a real target left there, so compare field by field, then the rest.
    const auto back = kd::decode_state_change(again);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->thread, h->thread);
    EXPECT_EQ(back->exception.information, h->exception.information);
    EXPECT_EQ(back->instruction_stream, h->instruction_stream);
    EXPECT_EQ(bytes(again.begin() + 0xC0, again.end()), bytes(body.begin() + 0xC0, body.end())) << "control report";
}

TEST(KdStateChange, LoadSymbolsFieldsSitWhereWindowsPutsThem) {
    kd::state_change_header h;
    h.new_state = kd::state_change::load_symbols;
    h.load_symbols = {42, 0xfffff80012340000u, 4, 0xABCD, 0x10000, true};
    bytes b(kd::state_change_header_size);
    ASSERT_EQ(kd::encode_state_change(h, b), b.size());
    EXPECT_EQ(le(b, 0, 4), 0x3031u);
    EXPECT_EQ(le(b, 0x20, 4), 42u);
    EXPECT_EQ(le(b, 0x28, 8), 0xfffff80012340000u);
    EXPECT_EQ(le(b, 0x30, 8), 4u);
    EXPECT_EQ(le(b, 0x38, 4), 0xABCDu);
    EXPECT_EQ(le(b, 0x3C, 4), 0x10000u);
    EXPECT_EQ(b[0x40], 1);
    const auto back = kd::decode_state_change(b);
    ASSERT_TRUE(back);
    EXPECT_TRUE(back->load_symbols.unload);
    EXPECT_EQ(back->load_symbols.base_of_dll, 0xfffff80012340000u);
    EXPECT_FALSE(kd::decode_state_change(std::span(b).first(0xEF))) << "one byte short";
}

TEST(KdManipulate, GetVersionFieldsSitWhereWindowsPutsThem) {
    kd::manipulate_header h;
    h.api = kd::manipulate_api::get_version;
    h.version = {10, 19041, 6, 2, 0x47, 0x8664, 12, 3, 0x31, 0, 0xfffff80000000000u, 0xfffff80000123450u,
                 0xfffff80000234560u};
    bytes b(kd::manipulate_header_size);
    ASSERT_EQ(kd::encode_manipulate(h, b), 0x38u);
    EXPECT_EQ(le(b, 0, 4), 0x3146u);
    EXPECT_EQ(le(b, 0x10, 2), 10u);
    EXPECT_EQ(le(b, 0x12, 2), 19041u);
    EXPECT_EQ(b[0x14], 6);
    EXPECT_EQ(le(b, 0x16, 2), 0x47u);
    EXPECT_EQ(le(b, 0x18, 2), 0x8664u) << "IMAGE_FILE_MACHINE_AMD64";
    EXPECT_EQ(b[0x1A], 12);
    EXPECT_EQ(le(b, 0x20, 8), 0xfffff80000000000u) << "KernBase";
    EXPECT_EQ(le(b, 0x28, 8), 0xfffff80000123450u) << "PsLoadedModuleList";
    EXPECT_EQ(le(b, 0x30, 8), 0xfffff80000234560u) << "DebuggerDataList";
    const auto back = kd::decode_manipulate(b);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->version.kern_base, h.version.kern_base);
    EXPECT_EQ(back->version.max_manipulate, 0x31);
}

TEST(KdManipulate, MemoryRequestsOfAllFourKindsShareOneLayout) {
    for (std::uint32_t api : {kd::manipulate_api::read_virtual_memory, kd::manipulate_api::write_virtual_memory,
                              kd::manipulate_api::read_physical_memory, kd::manipulate_api::write_physical_memory}) {
        kd::manipulate_header h;
        h.api = api;
        h.return_status = 0xC0000001;
        h.memory = {0x1000, 4000, 3999};
        bytes b(0x38);
        kd::encode_manipulate(h, b);
        EXPECT_EQ(le(b, 8, 4), 0xC0000001u);
        EXPECT_EQ(le(b, 0x10, 8), 0x1000u);
        EXPECT_EQ(le(b, 0x18, 4), 4000u);
        EXPECT_EQ(le(b, 0x1C, 4), 3999u);
        const auto back = kd::decode_manipulate(b);
        ASSERT_TRUE(back);
        EXPECT_EQ(back->memory.address, 0x1000u);
        EXPECT_EQ(back->memory.actual_bytes, 3999u);
    }
}

TEST(KdManipulate, ContinueAndContinue2AndContexts) {
    kd::manipulate_header h;
    h.api = kd::manipulate_api::continue2;
    h.continuation = {0x00010002, 1, 0x401, 0x1111, 0x2222};  // DBG_CONTINUE, single step
    bytes b(0x38);
    kd::encode_manipulate(h, b);
    EXPECT_EQ(le(b, 0x10, 4), 0x00010002u);
    EXPECT_EQ(le(b, 0x14, 4), 1u) << "TraceFlag right after the status (packed to 4)";
    EXPECT_EQ(le(b, 0x18, 8), 0x401u);
    EXPECT_EQ(le(b, 0x20, 8), 0x1111u);
    EXPECT_EQ(le(b, 0x28, 8), 0x2222u);
    auto back = kd::decode_manipulate(b);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->continuation.dr7, 0x401u);

    h = {};
    h.api = kd::manipulate_api::set_context;
    h.context_flags = 0x10001F;
    kd::encode_manipulate(h, b);
    EXPECT_EQ(le(b, 0x10, 4), 0x10001Fu);
    back = kd::decode_manipulate(b);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->context_flags, 0x10001Fu);
    EXPECT_FALSE(kd::decode_manipulate(std::span(b).first(0x37)));
}

TEST(KdDebugIo, APrintStringHeaderCarriesItsLength) {
    bytes b(kd::debug_io_header_size);
    kd::encode_debug_io({kd::debug_io_api::print_string, 0, 3, 12, 0}, b);
    EXPECT_EQ(le(b, 0, 4), 0x3230u);
    EXPECT_EQ(le(b, 6, 2), 3u);
    EXPECT_EQ(le(b, 8, 4), 12u);
    const auto back = kd::decode_debug_io(b);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->length_of_string, 12u);
}

TEST(KdFileIo, ACreateFileHeaderHasTheHandleAt0x20) {
    bytes b(kd::file_io_header_size);
    kd::encode_file_io({kd::file_io_api::create_file, 0, 0x80000000, 0x80, 1, 1, 0x20, 0x1234, 5000}, b);
    EXPECT_EQ(b.size(), 0x40u);
    EXPECT_EQ(le(b, 0, 4), 0x3430u);
    EXPECT_EQ(le(b, 8, 4), 0x80000000u);
    EXPECT_EQ(le(b, 0x18, 4), 0x20u);
    EXPECT_EQ(le(b, 0x20, 8), 0x1234u);
    EXPECT_EQ(le(b, 0x28, 8), 5000u);
    const auto back = kd::decode_file_io(b);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->length, 5000u);
}

TEST(KdApi, EveryNumberHasItsName) {
    EXPECT_EQ(kd::api_name(packet_type::state_manipulate, 0x3146), "DbgKdGetVersionApi");
    EXPECT_EQ(kd::api_name(packet_type::state_manipulate, 0x3130), "DbgKdReadVirtualMemoryApi");
    EXPECT_EQ(kd::api_name(packet_type::state_manipulate, 0x313D), "DbgKdReadPhysicalMemoryApi");
    EXPECT_EQ(kd::api_name(packet_type::state_manipulate, 0x3150), "DbgKdSwitchProcessor");
    EXPECT_EQ(kd::api_name(packet_type::state_manipulate, 0x3160), "DbgKdSetContextExApi");
    EXPECT_EQ(kd::api_name(packet_type::state_manipulate, 0x314A), "") << "a gap in the numbering";
    EXPECT_EQ(kd::api_name(packet_type::state_manipulate, 0x3161), "");
    EXPECT_EQ(kd::api_name(packet_type::state_change64, 0x3030), "DbgKdExceptionStateChange");
    EXPECT_EQ(kd::api_name(packet_type::state_change64, 0x3031), "DbgKdLoadSymbolsStateChange");
    EXPECT_EQ(kd::api_name(packet_type::debug_io, 0x3230), "DbgKdPrintStringApi");
    EXPECT_EQ(kd::api_name(packet_type::trace_io, 0x3330), "DbgKdPrintTraceApi");
    EXPECT_EQ(kd::api_name(packet_type::file_io, 0x3430), "DbgKdCreateFileApi");
    EXPECT_EQ(kd::api_name(packet_type::debug_io, 0x3146), "") << "numbers belong to their packet type";
    for (std::uint32_t n = kd::manipulate_api::first; n <= 0x3149; ++n)
        EXPECT_FALSE(kd::api_name(packet_type::state_manipulate, n).empty()) << std::hex << n;
}


TEST(KdManipulate, ControlSpaceIoSpaceMsrAndBreakpointFieldsSitWhereWindowsPutsThem) {
    bytes b(0x38);
    kd::manipulate_header h;
    h.api = kd::manipulate_api::read_control_space;
    h.processor = 1;
    h.memory = {2, 0x1F0, 0};
    kd::encode_manipulate(h, b);
    EXPECT_EQ(le(b, 6, 2), 1u) << "Processor";
    EXPECT_EQ(le(b, 0x10, 8), 2u) << "control space: the memory layout";
    EXPECT_EQ(le(b, 0x18, 4), 0x1F0u);
    EXPECT_EQ(kd::decode_manipulate(b)->memory.transfer_count, 0x1F0u);

    h = {};
    h.api = kd::manipulate_api::write_io_space;
    h.io = {0x3F8, 2, 0xBEEF};
    kd::encode_manipulate(h, b);
    EXPECT_EQ(le(b, 0x10, 8), 0x3F8u) << "IoAddress";
    EXPECT_EQ(le(b, 0x18, 4), 2u) << "DataSize";
    EXPECT_EQ(le(b, 0x1C, 4), 0xBEEFu) << "DataValue";
    EXPECT_EQ(kd::decode_manipulate(b)->io.value, 0xBEEFu);

    h = {};
    h.api = kd::manipulate_api::write_msr;
    h.msr = {0xC0000082, 0xfffff80012345678};
    kd::encode_manipulate(h, b);
    EXPECT_EQ(le(b, 0, 4), 0x3153u);
    EXPECT_EQ(le(b, 0x10, 4), 0xC0000082u) << "Msr";
    EXPECT_EQ(le(b, 0x14, 4), 0x12345678u) << "DataValueLow";
    EXPECT_EQ(le(b, 0x18, 4), 0xfffff800u) << "DataValueHigh";
    EXPECT_EQ(kd::decode_manipulate(b)->msr.value, 0xfffff80012345678u);

    h = {};
    h.api = kd::manipulate_api::write_breakpoint;
    h.breakpoint = {0xfffff80000004000, 7};
    kd::encode_manipulate(h, b);
    EXPECT_EQ(le(b, 0x10, 8), 0xfffff80000004000u) << "BreakPointAddress";
    EXPECT_EQ(le(b, 0x18, 4), 7u) << "BreakPointHandle";
    h = {};
    h.api = kd::manipulate_api::restore_breakpoint;
    h.breakpoint.handle = 7;
    kd::encode_manipulate(h, b);
    EXPECT_EQ(le(b, 0x10, 4), 7u) << "RestoreBreakPoint's handle opens the union";
    EXPECT_EQ(kd::decode_manipulate(b)->breakpoint.handle, 7u);
}

TEST(KdManipulate, AReplyAnswersOnlyTheRequestItNames) {
    kd::manipulate_header request;
    request.api = kd::manipulate_api::read_physical_memory;
    request.memory = {0x1000, 16, 0};
    auto reply = request;
    reply.memory.actual_bytes = 16;
    EXPECT_TRUE(kd::is_reply_to(request, reply));
    reply.memory.address = 0x2000;
    EXPECT_FALSE(kd::is_reply_to(request, reply)) << "a late answer to the read before";
    reply = request;
    reply.api = kd::manipulate_api::read_virtual_memory;
    EXPECT_FALSE(kd::is_reply_to(request, reply));
    request = {};
    request.api = kd::manipulate_api::read_msr;
    request.msr.msr = 0x10;
    reply = request;
    reply.msr = {0x10, 1234};
    EXPECT_TRUE(kd::is_reply_to(request, reply));
    reply.msr.msr = 0x11;
    EXPECT_FALSE(kd::is_reply_to(request, reply));
}

TEST(KdContext, Amd64RegistersSitWhereWinntPutsThemAndHaveWinDbgsNames) {
    EXPECT_EQ(kd::amd64::rax.offset, 0x78u);
    EXPECT_EQ(kd::amd64::rsp.offset, 0x98u);
    EXPECT_EQ(kd::amd64::rip.offset, 0xF8u);
    EXPECT_EQ(kd::amd64::eflags.size, 4u);
    EXPECT_EQ(kd::amd64::seg_cs.size, 2u);
    EXPECT_EQ(kd::amd64::find_register("RIP")->offset, 0xF8u);
    EXPECT_EQ(kd::amd64::find_register("efl")->offset, kd::amd64::eflags.offset);
    EXPECT_EQ(kd::amd64::find_register("cs")->offset, 0x38u);
    EXPECT_FALSE(kd::amd64::find_register("xyz"));
    EXPECT_FALSE(kd::amd64::find_register("averyverylongname"));
    kd::context_amd64 c;
    c.set(kd::amd64::seg_cs, 0x12345);
    EXPECT_EQ(c.get(kd::amd64::seg_cs), 0x2345u) << "a 16-bit register keeps 16 bits";
    EXPECT_EQ(c.bytes()[0x38], 0x45);
    c.set(kd::amd64::rip, 0xfffff80000001000);
    EXPECT_EQ(kd::context_amd64(c.bytes()).get(kd::amd64::rip), 0xfffff80000001000u);
}

TEST(KdStatus, NamesAndSeverity) {
    EXPECT_EQ(kd::status_name(kd::status::dbg_continue), "DBG_CONTINUE");
    EXPECT_EQ(kd::status_name(0x80000003), "STATUS_BREAKPOINT");
    EXPECT_TRUE(kd::status_name(0x12345678).empty());
    EXPECT_TRUE(kd::failed(kd::status::unsuccessful));
    EXPECT_FALSE(kd::failed(kd::status::breakpoint)) << "a warning, not an error";
    EXPECT_FALSE(kd::failed(kd::status::dbg_exception_not_handled));
    EXPECT_EQ(kd::ntstatus_error(kd::status::unsuccessful).message(), "STATUS_UNSUCCESSFUL (0xc0000001)");
    EXPECT_EQ(kd::ntstatus_error(0xC0001234).message(), "NTSTATUS 0xc0001234");
    EXPECT_EQ(link_state_name(events::link_state::peer_silent), "peer silent");
}

}  // namespace
