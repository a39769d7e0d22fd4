// Endpoint addresses: the one parser every tool uses for where to find the other end of a link.
//
//   tcp://HOST:PORT               connect over TCP (IPv6 hosts in brackets: tcp://[::1]:50000)
//   tcp-listen://[ADDR]:PORT      accept over TCP; ADDR defaults to 127.0.0.1
//   unix:///PATH                  connect to a Unix-domain stream socket (what VMware, VirtualBox
//   unix-listen:///PATH           and QEMU call a named pipe for a guest serial port), or create one
//   fifo:///BASE                  a FIFO pair BASE.in and BASE.out (QEMU's -serial pipe:BASE)
//   pipe:\\.\pipe\NAME            a Windows named pipe, as a client
//   pipe-listen:\\.\pipe\NAME     a Windows named pipe, created by us
//   serial:///dev/ttyS0?baud=115200&data=8&parity=none&stop=1&flow=none
//   shm://NAME                    guest shared memory, as the host (the VMM side: creates it)
//   shm://NAME?guest              guest shared memory, as the guest (attaches to the host's)
//                                 shm:// also takes ring=BYTES (host: each ring's size, a power
//                                 of two from 4096 to 16 MiB)
//   ivshmem:///PATH               guest shared memory from QEMU's ivshmem-doorbell device: the
//                                 ivshmem server QEMU connects to at PATH (a Unix socket); takes
//                                 ring=BYTES as shm:// does
//   ivshmem:///PATH?plain         the same with QEMU's ivshmem-plain device (no doorbells, both
//                                 sides poll): PATH is the memory file both map
//
// Any URI form also takes `?resets=0` (do not run the reset handshake, like WinDbg's resets=0),
// `?reconnect` (on disconnect, wait for or re-establish the link) and `?rate=115200` (pace what is
// written like a serial line of that many bits per second), joined with '&'.
//
// The strings kernel debugger users already type are accepted too:
//   com:pipe,port=\\.\pipe\com_1,resets=0,reconnect     -> pipe:\\.\pipe\com_1?resets=0&reconnect
//   com:port=COM1,baud=115200                            -> serial://COM1?baud=115200
//   com:ipport=50000,port=192.168.0.2                    -> tcp://192.168.0.2:50000
//
// Parsing is pure (no I/O, no name resolution): it only checks that an address is well formed and
// says clearly what is wrong when it is not.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kdcom/error.hpp"
#include "kdcom/transport/errors.hpp"

namespace kdcom::transport {

enum class address_kind {
    tcp_connect,
    tcp_listen,
    unix_connect,
    unix_listen,
    fifo,
    windows_pipe_connect,
    windows_pipe_listen,
    serial,
    shared_memory,
    ivshmem,
};

struct serial_settings {
    unsigned baud = 115200;
    unsigned data_bits = 8;
    enum class parity_kind { none, odd, even } parity = parity_kind::none;
    enum class stop_kind { one, one_and_half, two } stop_bits = stop_kind::one;
    enum class flow_kind { none, software, hardware } flow = flow_kind::none;
    friend bool operator==(const serial_settings&, const serial_settings&) = default;
};

struct address {
    address_kind kind = address_kind::tcp_connect;
    std::string host;      // tcp: host name or IP (IPv6 without brackets)
    std::uint16_t port = 0;  // tcp
    std::string path;      // unix socket path, FIFO base, pipe name (\\.\pipe\NAME), serial device, shm name
    serial_settings serial;
    std::optional<bool> send_resets;  // resets=0/1 given; otherwise the role's default
    bool reconnect = false;
    unsigned line_rate = 0;  // rate=BPS: pace writes like a serial line of that speed (0: off)
    bool shm_guest = false;        // shm: attach as the guest rather than create as the host
    std::uint32_t shm_ring_size = 0;  // shm: ring=BYTES (0: the transport's default)
    bool ivshmem_plain = false;       // ivshmem: PATH is ivshmem-plain's memory file, not a server socket

    friend bool operator==(const address&, const address&) = default;

    bool listens() const noexcept {
        return kind == address_kind::tcp_listen || kind == address_kind::unix_listen ||
               kind == address_kind::windows_pipe_listen || (kind == address_kind::shared_memory && !shm_guest) || kind == address_kind::ivshmem;
    }
    std::string fifo_in() const { return path + ".in"; }    // what the guest side reads
    std::string fifo_out() const { return path + ".out"; }  // what the guest side writes

    // The canonical URI form; parse_address(to_string()) gives the same address.
    std::string to_string() const;
};

// Parses `text`. On failure returns nullopt and sets `why`: transport_errc::invalid_address, with
// a detail saying what is wrong, suitable after "invalid address 'TEXT': ".
std::optional<address> parse_address(std::string_view text, failure& why);

// ---- Implementation --------------------------------------------------------------------------

namespace detail {

inline bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

inline std::optional<unsigned long> parse_number(std::string_view s, unsigned long max) {
    unsigned long v = 0;
    if (s.empty()) return std::nullopt;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || v > max) return std::nullopt;
    return v;
}

inline std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> parts;
    while (true) {
        const auto at = s.find(sep);
        parts.push_back(s.substr(0, at));
        if (at == std::string_view::npos) break;
        s.remove_prefix(at + 1);
    }
    return parts;
}

// Splits "key=value" (or a bare "key").
inline std::pair<std::string_view, std::optional<std::string_view>> key_value(std::string_view item) {
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) return {item, std::nullopt};
    return {item.substr(0, eq), item.substr(eq + 1)};
}

// A host name or IPv4 address (letters, digits, '.', '-', '_'), or an IPv6 address (hex digits,
// ':', '.', and a '%' zone).
inline bool set_host(address& a, std::string_view host, std::string& error) {
    const bool v6 = host.find(':') != std::string_view::npos;
    const std::string_view allowed =
        v6 ? std::string_view("0123456789abcdefABCDEF:.%")
           : std::string_view("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");
    if (host.empty() || host.size() > 253 || host.find_first_not_of(allowed) != std::string_view::npos) {
        error = "host '" + std::string(host) + "' is not a host name or IP address";
        return false;
    }
    a.host = std::string(host);
    return true;
}

// '?' starts the options, so a path that holds one cannot be written as an address.
inline bool set_path(address& a, std::string_view path, std::string& error) {
    if (path.find('?') != std::string_view::npos) {
        error = "'?' in a path or name (it starts the options)";
        return false;
    }
    a.path = std::string(path);
    return true;
}

inline bool set_port(address& a, std::string_view text, bool allow_zero, std::string& error) {
    const auto v = parse_number(text, 65535);
    if (!v || (*v == 0 && !allow_zero)) {
        error = "port '" + std::string(text) + "' is not a number from " + (allow_zero ? "0" : "1") + " to 65535";
        return false;
    }
    a.port = static_cast<std::uint16_t>(*v);
    return true;
}

// "HOST:PORT", "[V6]:PORT", ":PORT" (listen only) or "PORT" (listen only).
inline bool parse_host_port(address& a, std::string_view s, bool listen, std::string& error) {
    std::string_view host, port;
    if (starts_with(s, "[")) {
        const auto close = s.find(']');
        if (close == std::string_view::npos) {
            error = "IPv6 address has no closing ']'";
            return false;
        }
        host = s.substr(1, close - 1);
        s.remove_prefix(close + 1);
        if (!starts_with(s, ":")) {
            error = "expected ':PORT' after the IPv6 address";
            return false;
        }
        port = s.substr(1);
    } else {
        const auto colon = s.rfind(':');
        if (colon == std::string_view::npos) {
            if (!listen) {
                error = "expected HOST:PORT";
                return false;
            }
            port = s;
        } else {
            host = s.substr(0, colon);
            port = s.substr(colon + 1);
            if (host.find(':') != std::string_view::npos) {
                error = "an IPv6 address must be written in brackets, as [::1]:PORT";
                return false;
            }
        }
    }
    if (host.empty()) {
        if (!listen) {
            error = "no host given";
            return false;
        }
        host = "127.0.0.1";  // listeners stay on this machine unless told otherwise
    }
    return set_host(a, host, error) && set_port(a, port, listen, error);
}

inline bool apply_common_option(address& a, std::string_view key, std::optional<std::string_view> value,
                                std::string& error) {
    if (key == "resets") {
        if (value != "0" && value != "1") {
            error = "resets must be 0 or 1";
            return false;
        }
        a.send_resets = *value == "1";
        return true;
    }
    if (key == "rate") {
        const auto n = parse_number(value.value_or(""), 100'000'000);
        if (!n || *n < 300) {
            error = "rate must be a line speed in bits per second, at least 300";
            return false;
        }
        a.line_rate = static_cast<unsigned>(*n);
        return true;
    }
    if (key == "reconnect") {
        if (value && *value != "1" && *value != "0") {
            error = "reconnect takes no value (or 0/1)";
            return false;
        }
        a.reconnect = !value || *value == "1";
        return true;
    }
    error = "unknown option '" + std::string(key) + "'";
    return false;
}

inline bool apply_shm_option(address& a, std::string_view key, std::optional<std::string_view> value,
                             std::string& error) {
    if (key == "guest") {
        if (value) {
            error = "guest takes no value";
            return false;
        }
        a.shm_guest = true;
        return true;
    }
    if (key == "ring") {
        const auto n = parse_number(value.value_or(""), 16u << 20);
        if (!n || *n < 4096 || (*n & (*n - 1)) != 0) {
            error = "ring must be a power of two from 4096 to 16777216 bytes";
            return false;
        }
        a.shm_ring_size = static_cast<std::uint32_t>(*n);
        return true;
    }
    return apply_common_option(a, key, value, error);
}

inline bool apply_ivshmem_option(address& a, std::string_view key, std::optional<std::string_view> value,
                                 std::string& error) {
    if (key == "plain") {
        if (value) {
            error = "plain takes no value";
            return false;
        }
        a.ivshmem_plain = true;
        return true;
    }
    if (key == "ring") return apply_shm_option(a, key, value, error);
    return apply_common_option(a, key, value, error);
}

inline bool apply_serial_option(address& a, std::string_view key, std::optional<std::string_view> value,
                                std::string& error) {
    auto& s = a.serial;
    const std::string v = value ? std::string(*value) : std::string();
    if (key == "baud") {
        const auto n = parse_number(v, 4'000'000);
        if (!n || *n == 0) {
            error = "baud '" + v + "' is not a positive number";
            return false;
        }
        s.baud = static_cast<unsigned>(*n);
    } else if (key == "data") {
        const auto n = parse_number(v, 8);
        if (!n || *n < 5) {
            error = "data bits must be 5 to 8";
            return false;
        }
        s.data_bits = static_cast<unsigned>(*n);
    } else if (key == "parity") {
        if (v == "none") s.parity = serial_settings::parity_kind::none;
        else if (v == "odd") s.parity = serial_settings::parity_kind::odd;
        else if (v == "even") s.parity = serial_settings::parity_kind::even;
        else {
            error = "parity must be none, odd or even";
            return false;
        }
    } else if (key == "stop") {
        if (v == "1") s.stop_bits = serial_settings::stop_kind::one;
        else if (v == "1.5") s.stop_bits = serial_settings::stop_kind::one_and_half;
        else if (v == "2") s.stop_bits = serial_settings::stop_kind::two;
        else {
            error = "stop bits must be 1, 1.5 or 2";
            return false;
        }
    } else if (key == "flow") {
        if (v == "none") s.flow = serial_settings::flow_kind::none;
        else if (v == "software" || v == "xonxoff") s.flow = serial_settings::flow_kind::software;
        else if (v == "hardware" || v == "rtscts") s.flow = serial_settings::flow_kind::hardware;
        else {
            error = "flow must be none, software or hardware";
            return false;
        }
    } else {
        return apply_common_option(a, key, value, error);
    }
    return true;
}

inline bool is_windows_pipe_name(std::string_view p) {
    // \\.\pipe\NAME or \\SERVER\pipe\NAME
    if (!starts_with(p, "\\\\")) return false;
    const auto server_end = p.find('\\', 2);
    if (server_end == std::string_view::npos || server_end == 2) return false;
    const std::string_view rest = p.substr(server_end);
    return starts_with(rest, "\\pipe\\") && rest.size() > 6;
}

// The WinDbg -k form: com:pipe,port=\\.\pipe\NAME,resets=0,reconnect / com:port=COM1,baud=N /
// com:ipport=PORT,port=IP.
inline std::optional<address> parse_com(std::string_view rest, std::string& error) {
    bool pipe = false;
    std::optional<std::string_view> port, ipport, baud;
    address a;
    for (std::string_view item : split(rest, ',')) {
        const auto [key, value] = key_value(item);
        if (key == "pipe" && !value) pipe = true;
        else if (key == "port" && value) port = value;
        else if (key == "ipport" && value) ipport = value;
        else if (key == "baud" && value) baud = value;
        else if (key == "resets" || key == "reconnect") {
            if (!apply_common_option(a, key, value, error)) return std::nullopt;
        } else {
            error = "unknown com: option '" + std::string(item) + "'";
            return std::nullopt;
        }
    }
    if (!port || port->empty()) {
        error = "com: needs port=";
        return std::nullopt;
    }
    if (ipport) {
        a.kind = address_kind::tcp_connect;
        if (!set_host(a, *port, error) || !set_port(a, *ipport, false, error)) return std::nullopt;
    } else if (pipe) {
        if (!is_windows_pipe_name(*port)) {
            error = "pipe port must look like \\\\.\\pipe\\NAME";
            return std::nullopt;
        }
        a.kind = address_kind::windows_pipe_connect;
        if (!set_path(a, *port, error)) return std::nullopt;
    } else {
        a.kind = address_kind::serial;
        if (!set_path(a, *port, error)) return std::nullopt;
        if (baud && !apply_serial_option(a, "baud", baud, error)) return std::nullopt;
    }
    if (baud && a.kind != address_kind::serial) {
        error = "baud= applies only to a serial port";
        return std::nullopt;
    }
    return a;
}

inline std::optional<address> parse_text(std::string_view text, std::string& error) {
    if (starts_with(text, "com:")) return parse_com(text.substr(4), error);

    struct scheme_info {
        std::string_view prefix;
        address_kind kind;
    };
    static constexpr scheme_info schemes[] = {
        {"tcp-listen://", address_kind::tcp_listen},    {"tcp://", address_kind::tcp_connect},
        {"unix-listen://", address_kind::unix_listen},  {"unix://", address_kind::unix_connect},
        {"fifo://", address_kind::fifo},                {"pipe-listen:", address_kind::windows_pipe_listen},
        {"pipe:", address_kind::windows_pipe_connect},  {"serial://", address_kind::serial},
        {"shm://", address_kind::shared_memory},        {"ivshmem://", address_kind::ivshmem},
    };
    const scheme_info* scheme = nullptr;
    for (const auto& s : schemes)
        if (starts_with(text, s.prefix)) {
            scheme = &s;
            break;
        }
    if (!scheme) {
        error = "unknown form; expected tcp://HOST:PORT, tcp-listen://[ADDR]:PORT, unix:///PATH, "
                "unix-listen:///PATH, fifo:///BASE, pipe:\\\\.\\pipe\\NAME, serial:///dev/DEVICE, "
                "shm://NAME, ivshmem:///PATH or com:...";
        return std::nullopt;
    }
    address a;
    a.kind = scheme->kind;
    std::string_view rest = text.substr(scheme->prefix.size());
    std::string_view query;
    if (const auto q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }

    switch (a.kind) {
    case address_kind::tcp_connect:
    case address_kind::tcp_listen:
        if (!parse_host_port(a, rest, a.kind == address_kind::tcp_listen, error)) return std::nullopt;
        break;
    case address_kind::unix_connect:
    case address_kind::unix_listen:
    case address_kind::fifo:
    case address_kind::ivshmem:
        if (rest.empty()) {
            error = "no path given (write three slashes for an absolute path: unix:///tmp/kd.sock)";
            return std::nullopt;
        }
        // A Unix socket path must fit sockaddr_un::sun_path (108 bytes with its terminator).
        if (a.kind != address_kind::fifo && rest.size() > 107) {
            error = "socket path longer than 107 bytes";
            return std::nullopt;
        }
        a.path = std::string(rest);
        break;
    case address_kind::windows_pipe_connect:
    case address_kind::windows_pipe_listen:
        if (!is_windows_pipe_name(rest)) {
            error = "pipe name must look like \\\\.\\pipe\\NAME";
            return std::nullopt;
        }
        a.path = std::string(rest);
        break;
    case address_kind::serial:
        if (rest.empty()) {
            error = "no serial device given (serial:///dev/ttyS0)";
            return std::nullopt;
        }
        a.path = std::string(rest);
        break;
    case address_kind::shared_memory:
        // The name becomes part of a socket path (kdcom-shm-NAME.sock), which must stay short.
        if (rest.empty() || rest.size() > 64 ||
            rest.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
                std::string_view::npos) {
            error = "shared memory name must be 1 to 64 letters, digits, '.', '_' or '-'";
            return std::nullopt;
        }
        a.path = std::string(rest);
        break;
    }

    if (!query.empty()) {
        for (std::string_view item : split(query, '&')) {
            const auto [key, value] = key_value(item);
            const bool ok = a.kind == address_kind::serial          ? apply_serial_option(a, key, value, error)
                            : a.kind == address_kind::shared_memory ? apply_shm_option(a, key, value, error)
                            : a.kind == address_kind::ivshmem ? apply_ivshmem_option(a, key, value, error)
                                                                    : apply_common_option(a, key, value, error);
            if (!ok) return std::nullopt;
        }
    }
    return a;
}

}  // namespace detail

inline std::optional<address> parse_address(std::string_view text, failure& why) {
    std::string error;
    auto a = detail::parse_text(text, error);
    if (a) why = {};
    else why = {transport_errc::invalid_address, std::move(error)};
    return a;
}

inline std::string address::to_string() const {
    std::string s;
    switch (kind) {
    case address_kind::tcp_connect:
    case address_kind::tcp_listen: {
        s = kind == address_kind::tcp_connect ? "tcp://" : "tcp-listen://";
        const bool v6 = host.find(':') != std::string::npos;
        s += v6 ? "[" + host + "]" : host;
        s += ":" + std::to_string(port);
        break;
    }
    case address_kind::unix_connect: s = "unix://" + path; break;
    case address_kind::unix_listen: s = "unix-listen://" + path; break;
    case address_kind::fifo: s = "fifo://" + path; break;
    case address_kind::windows_pipe_connect: s = "pipe:" + path; break;
    case address_kind::windows_pipe_listen: s = "pipe-listen:" + path; break;
    case address_kind::shared_memory: s = "shm://" + path; break;
    case address_kind::ivshmem: s = "ivshmem://" + path; break;
    case address_kind::serial: {
        s = "serial://" + path + "?baud=" + std::to_string(serial.baud) + "&data=" + std::to_string(serial.data_bits);
        static constexpr const char* parity[] = {"none", "odd", "even"};
        static constexpr const char* stop[] = {"1", "1.5", "2"};
        static constexpr const char* flow[] = {"none", "software", "hardware"};
        s += std::string("&parity=") + parity[static_cast<int>(serial.parity)] + "&stop=" +
             stop[static_cast<int>(serial.stop_bits)] + "&flow=" + flow[static_cast<int>(serial.flow)];
        break;
    }
    }
    std::string options;
    if (shm_guest) options += "guest";
    if (ivshmem_plain) options += "plain";
    if (shm_ring_size) options += std::string(options.empty() ? "" : "&") + "ring=" + std::to_string(shm_ring_size);
    if (send_resets) options += std::string(options.empty() ? "" : "&") + "resets=" + (*send_resets ? "1" : "0");
    if (reconnect) options += std::string(options.empty() ? "" : "&") + "reconnect";
    if (line_rate) options += std::string(options.empty() ? "" : "&") + "rate=" + std::to_string(line_rate);
    if (!options.empty()) s += (s.find('?') == std::string::npos ? "?" : "&") + options;
    return s;
}

}  // namespace kdcom::transport
