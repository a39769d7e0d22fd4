// DBGKD_FILE_IO: the 0x40-byte message header of a KD_FILE_IO packet (.kdfiles: the target asks
// the debugger for a replacement driver file). For DbgKdCreateFileApi the message data is the
// file name in UTF-16LE.
//
// Layout (little-endian; ReactOS windbgkd.h): ApiNumber u32 @0, Status u32 @4, then a 56-byte
// union @8; CreateFile: DesiredAccess u32 @8, FileAttributes u32 @0xC, ShareAccess u32 @0x10,
// CreateDisposition u32 @0x14, CreateOptions u32 @0x18, Handle u64 @0x20, Length u64 @0x28.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include <boost/endian/buffers.hpp>

#include "kdcom/kd/api.hpp"

namespace kdcom::kd {

namespace wire_layout {
struct file_io {
    boost::endian::little_uint32_buf_t api_number, status;
    boost::endian::little_uint32_buf_t desired_access, file_attributes, share_access, create_disposition,
        create_options, alignment;
    boost::endian::little_uint64_buf_t handle, length;
    std::uint8_t rest_of_union[16];
};
static_assert(sizeof(file_io) == 0x40, "DBGKD_FILE_IO");
}  // namespace wire_layout

inline constexpr std::size_t file_io_header_size = sizeof(wire_layout::file_io);

struct file_io_header {
    std::uint32_t api = file_io_api::create_file;
    std::uint32_t status = 0;  // NTSTATUS, in the debugger's reply
    std::uint32_t desired_access = 0, file_attributes = 0, share_access = 0, create_disposition = 0,
                  create_options = 0;
    std::uint64_t handle = 0, length = 0;  // in the reply: the file's handle and size
};

inline std::optional<file_io_header> decode_file_io(std::span<const std::uint8_t> body) noexcept {
    if (body.size() < file_io_header_size) return std::nullopt;
    wire_layout::file_io w;
    std::memcpy(&w, body.data(), sizeof w);
    return file_io_header{w.api_number.value(),       w.status.value(),           w.desired_access.value(),
                          w.file_attributes.value(),  w.share_access.value(),     w.create_disposition.value(),
                          w.create_options.value(),   w.handle.value(),           w.length.value()};
}

inline std::size_t encode_file_io(const file_io_header& h, std::span<std::uint8_t> out) noexcept {
    if (out.size() < file_io_header_size) return 0;
    wire_layout::file_io w;
    std::memset(&w, 0, sizeof w);
    w.api_number = h.api;
    w.status = h.status;
    w.desired_access = h.desired_access;
    w.file_attributes = h.file_attributes;
    w.share_access = h.share_access;
    w.create_disposition = h.create_disposition;
    w.create_options = h.create_options;
    w.handle = h.handle;
    w.length = h.length;
    std::memcpy(out.data(), &w, sizeof w);
    return sizeof w;
}

}  // namespace kdcom::kd
