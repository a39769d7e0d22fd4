// A FIFO pair as a KDCOM link, in QEMU's `-serial pipe:BASE` convention: the guest's serial port
// reads BASE.in and writes BASE.out. A target (standing in for the guest) therefore reads BASE.in
// and writes BASE.out; a debugger reads BASE.out and writes BASE.in. Missing FIFOs are created
// with mode 0600.
#pragma once

#include <memory>
#include <string>

#include <asio/any_io_executor.hpp>

#include "kdcom/endpoint/config.hpp"
#include "kdcom/net/byte_stream.hpp"

namespace kdcom::net {

std::unique_ptr<link> make_fifo_link(const asio::any_io_executor& ex, std::string base, role side);

}  // namespace kdcom::net
