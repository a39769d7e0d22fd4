// A serial port as a KDCOM link (asio::serial_port): baud rate, data bits, parity, stop bits and
// flow control from the address. On POSIX, WinDbg's COMn names map to /dev/ttyS(n-1).
#pragma once

#include <memory>
#include <string>

#include <asio/any_io_executor.hpp>

#include "kdcom/net/byte_stream.hpp"
#include "kdcom/transport/address.hpp"

namespace kdcom::net {

std::unique_ptr<link> make_serial_link(const asio::any_io_executor& ex, std::string device,
                                       const transport::serial_settings& settings);

// "COM3" -> "/dev/ttyS2" on POSIX; anything else unchanged.
std::string serial_device_path(const std::string& device);

}  // namespace kdcom::net
