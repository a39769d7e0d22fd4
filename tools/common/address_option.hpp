// An address given on a tool's command line: parsed, or refused with a message naming the option.
#pragma once

#include <string>

#include <fmt/format.h>

#include "kdcom/transport/address.hpp"
#include "tool_error.hpp"

namespace kdcom::tools {

// `what` names the address in the message: "invalid WHAT address 'TEXT': why".
inline transport::address parse_address_option(const std::string& text, const char* what) {
    failure error;
    auto a = transport::parse_address(text, error);
    if (!a) throw tool_error(fmt::format("invalid {} address '{}': {}", what, text, error.message()));
    return *a;
}

// True for an address that can only connect (tcp://, unix://, a pipe client): not one to listen on.
inline bool connects_only(const transport::address& a) {
    using transport::address_kind;
    return a.kind == address_kind::tcp_connect || a.kind == address_kind::unix_connect ||
           a.kind == address_kind::windows_pipe_connect;
}

}  // namespace kdcom::tools
