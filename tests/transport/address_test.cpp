// Every address form parses to what it says, round-trips through to_string(), and anything
// malformed gets a message that says what is wrong.
#include <gtest/gtest.h>

#include "kdcom/transport/address.hpp"

namespace {
using namespace kdcom::transport;

address parse_ok(std::string_view text) {
    kdcom::failure error;
    const auto a = parse_address(text, error);
    EXPECT_TRUE(a.has_value()) << text << ": " << error.message();
    EXPECT_FALSE(error) << "a success clears the failure";
    return a.value_or(address{});
}

// The detail; the code is checked here, so that every malformed form is tested for it.
std::string parse_error(std::string_view text) {
    kdcom::failure error;
    const auto a = parse_address(text, error);
    EXPECT_FALSE(a.has_value()) << text << " parsed";
    EXPECT_EQ(error.code, transport_errc::invalid_address) << text;
    EXPECT_FALSE(error.detail.empty()) << text;
    return error.detail;
}

TEST(Address, TcpClient) {
    const auto a = parse_ok("tcp://debugbox:50000");
    EXPECT_EQ(a.kind, address_kind::tcp_connect);
    EXPECT_EQ(a.host, "debugbox");
    EXPECT_EQ(a.port, 50000);
    EXPECT_FALSE(a.listens());
}

TEST(Address, TcpIpv6InBrackets) {
    const auto a = parse_ok("tcp://[::1]:7");
    EXPECT_EQ(a.host, "::1");
    EXPECT_EQ(a.to_string(), "tcp://[::1]:7");
}

TEST(Address, TcpListenerBindsLoopbackUnlessTold) {
    EXPECT_EQ(parse_ok("tcp-listen://:9000").host, "127.0.0.1");
    EXPECT_EQ(parse_ok("tcp-listen://9000").host, "127.0.0.1");
    EXPECT_EQ(parse_ok("tcp-listen://0.0.0.0:9000").host, "0.0.0.0");
    EXPECT_EQ(parse_ok("tcp-listen://:0").port, 0) << "0 asks for any free port";
    EXPECT_TRUE(parse_ok("tcp-listen://:9000").listens());
}

TEST(Address, UnixSocketsAndFifos) {
    const auto c = parse_ok("unix:///tmp/kd.sock");
    EXPECT_EQ(c.kind, address_kind::unix_connect);
    EXPECT_EQ(c.path, "/tmp/kd.sock");
    EXPECT_EQ(parse_ok("unix-listen:///tmp/kd.sock").kind, address_kind::unix_listen);
    const auto f = parse_ok("fifo:///tmp/guest");
    EXPECT_EQ(f.kind, address_kind::fifo);
    EXPECT_EQ(f.fifo_in(), "/tmp/guest.in");
    EXPECT_EQ(f.fifo_out(), "/tmp/guest.out");
}

TEST(Address, WindowsPipes) {
    const auto a = parse_ok(R"(pipe:\\.\pipe\com_1)");
    EXPECT_EQ(a.kind, address_kind::windows_pipe_connect);
    EXPECT_EQ(a.path, R"(\\.\pipe\com_1)");
    EXPECT_EQ(parse_ok(R"(pipe-listen:\\.\pipe\kd)").kind, address_kind::windows_pipe_listen);
    EXPECT_EQ(parse_ok(R"(pipe:\\server\pipe\kd)").path, R"(\\server\pipe\kd)");
}

TEST(Address, SerialWithSettings) {
    const auto a = parse_ok("serial:///dev/ttyS0?baud=57600&parity=even&stop=2&flow=hardware&data=7");
    EXPECT_EQ(a.kind, address_kind::serial);
    EXPECT_EQ(a.path, "/dev/ttyS0");
    EXPECT_EQ(a.serial.baud, 57600u);
    EXPECT_EQ(a.serial.data_bits, 7u);
    EXPECT_EQ(a.serial.parity, serial_settings::parity_kind::even);
    EXPECT_EQ(a.serial.stop_bits, serial_settings::stop_kind::two);
    EXPECT_EQ(a.serial.flow, serial_settings::flow_kind::hardware);
    EXPECT_EQ(parse_ok("serial:///dev/ttyUSB0").serial, serial_settings{}) << "115200 8N1 by default";
}

TEST(Address, SharedMemory) {
    const auto a = parse_ok("shm://vm-42.kd");
    EXPECT_EQ(a.kind, address_kind::shared_memory);
    EXPECT_EQ(a.path, "vm-42.kd");
    EXPECT_FALSE(a.shm_guest) << "the host (the VMM side) by default";
    EXPECT_TRUE(a.listens());
    const auto g = parse_ok("shm://vm-42.kd?guest&reconnect");
    EXPECT_TRUE(g.shm_guest);
    EXPECT_FALSE(g.listens());
    EXPECT_TRUE(g.reconnect);
    EXPECT_EQ(parse_ok("shm://n?ring=65536").shm_ring_size, 65536u);
    EXPECT_NE(parse_error("shm://n?ring=5000").find("power of two"), std::string::npos);
    EXPECT_NE(parse_error("shm://n?ring=1024").find("power of two"), std::string::npos);
    EXPECT_NE(parse_error("shm://n?guest=1").find("no value"), std::string::npos);
    EXPECT_NE(parse_error("tcp://h:1?guest").find("unknown option"), std::string::npos);
    EXPECT_NE(parse_error("shm://" + std::string(65, 'a')).find("64"), std::string::npos);
}

TEST(Address, QemuIvshmemServer) {
    const auto a = parse_ok("ivshmem:///run/kd.sock");
    EXPECT_EQ(a.kind, address_kind::ivshmem);
    EXPECT_EQ(a.path, "/run/kd.sock");
    EXPECT_TRUE(a.listens()) << "QEMU connects to it";
    EXPECT_EQ(parse_ok("ivshmem:///run/kd.sock?ring=1048576").shm_ring_size, 1048576u);
    EXPECT_NE(parse_error("ivshmem:///x?ring=5000").find("power of two"), std::string::npos);
    EXPECT_NE(parse_error("ivshmem:///x?guest").find("unknown option"), std::string::npos)
        << "the guest side of ivshmem is QEMU's device, not an address";
    EXPECT_NE(parse_error("ivshmem://").find("no path"), std::string::npos);
    const auto plain = parse_ok("ivshmem:///dev/shm/kd?plain");
    EXPECT_TRUE(plain.ivshmem_plain) << "the path is ivshmem-plain's memory file";
    EXPECT_FALSE(parse_ok("ivshmem:///run/kd.sock").ivshmem_plain);
    EXPECT_NE(parse_error("ivshmem:///x?plain=1").find("no value"), std::string::npos);
    EXPECT_NE(parse_error("shm://x?plain").find("unknown option"), std::string::npos);
    EXPECT_NE(parse_error("ivshmem:///" + std::string(110, 'a')).find("107"), std::string::npos);
}

TEST(Address, CommonOptions) {
    const auto a = parse_ok("unix:///tmp/kd.sock?resets=0&reconnect&rate=115200");
    EXPECT_EQ(a.send_resets, false);
    EXPECT_TRUE(a.reconnect);
    EXPECT_EQ(a.line_rate, 115200u);
    EXPECT_NE(parse_error("tcp://h:1?rate=fast").find("bits per second"), std::string::npos);
    EXPECT_FALSE(parse_ok("tcp://h:1").send_resets.has_value());
}

TEST(Address, WinDbgPipeString) {
    const auto a = parse_ok(R"(com:pipe,port=\\.\pipe\com_1,resets=0,reconnect)");
    EXPECT_EQ(a.kind, address_kind::windows_pipe_connect);
    EXPECT_EQ(a.path, R"(\\.\pipe\com_1)");
    EXPECT_EQ(a.send_resets, false);
    EXPECT_TRUE(a.reconnect);
}

TEST(Address, WinDbgSerialString) {
    const auto a = parse_ok("com:port=COM1,baud=115200");
    EXPECT_EQ(a.kind, address_kind::serial);
    EXPECT_EQ(a.path, "COM1");
    EXPECT_EQ(a.serial.baud, 115200u);
}

TEST(Address, WinDbgTcpString) {
    const auto a = parse_ok("com:ipport=50000,port=192.168.0.2");
    EXPECT_EQ(a.kind, address_kind::tcp_connect);
    EXPECT_EQ(a.host, "192.168.0.2");
    EXPECT_EQ(a.port, 50000);
}

TEST(Address, ToStringRoundTrips) {
    for (std::string_view text :
         {"tcp://h:1", "tcp-listen://127.0.0.1:9000", "unix:///a/b", "unix-listen:///a/b?reconnect",
          "fifo:///x", R"(pipe:\\.\pipe\n?resets=0)", R"(pipe-listen:\\.\pipe\n)",
          "serial:///dev/ttyS1?baud=9600&data=8&parity=odd&stop=1.5&flow=software&resets=1", "shm://n",
          "shm://n?guest&ring=8192&resets=0", "tcp://h:2?reconnect&rate=115200", "ivshmem:///a/b?ring=65536", "ivshmem:///a/b?plain&ring=65536"}) {
        const auto a = parse_ok(text);
        EXPECT_EQ(parse_ok(a.to_string()), a) << text << " -> " << a.to_string();
    }
}

TEST(Address, MalformedAddressesSayWhatIsWrong) {
    EXPECT_NE(parse_error("http://x:1").find("unknown form"), std::string::npos);
    EXPECT_NE(parse_error("tcp://host").find("HOST:PORT"), std::string::npos);
    EXPECT_NE(parse_error("tcp://:80").find("no host"), std::string::npos);
    EXPECT_NE(parse_error("tcp://h:0").find("port '0'"), std::string::npos);
    EXPECT_NE(parse_error("tcp://h:65536").find("65535"), std::string::npos);
    EXPECT_NE(parse_error("tcp://h:8x").find("port '8x'"), std::string::npos);
    EXPECT_NE(parse_error("tcp://::1:80").find("brackets"), std::string::npos);
    EXPECT_NE(parse_error("tcp://[::1:80").find("']'"), std::string::npos);
    EXPECT_NE(parse_error("unix://").find("no path"), std::string::npos);
    EXPECT_NE(parse_error("unix:///" + std::string(200, 'a')).find("107"), std::string::npos);
    EXPECT_NE(parse_error("pipe:com_1").find(R"(\\.\pipe\NAME)"), std::string::npos);
    EXPECT_NE(parse_error("serial:///dev/ttyS0?baud=fast").find("baud"), std::string::npos);
    EXPECT_NE(parse_error("serial:///dev/ttyS0?parity=mark").find("parity"), std::string::npos);
    EXPECT_NE(parse_error("serial:///dev/ttyS0?stop=3").find("stop"), std::string::npos);
    EXPECT_NE(parse_error("serial:///dev/ttyS0?data=9").find("data bits"), std::string::npos);
    EXPECT_NE(parse_error("shm://a/b").find("letters"), std::string::npos);
    EXPECT_NE(parse_error("tcp://h:1?colour=red").find("unknown option 'colour'"), std::string::npos);
    EXPECT_NE(parse_error("tcp://h:1?resets=yes").find("0 or 1"), std::string::npos);
    EXPECT_NE(parse_error("com:pipe,port=com_1").find("pipe port"), std::string::npos);
    EXPECT_NE(parse_error("com:baud=9600").find("port="), std::string::npos);
    EXPECT_NE(parse_error("com:port=COM1,speed=9").find("speed"), std::string::npos);
    EXPECT_NE(parse_error("com:ipport=1,port=h,baud=9600").find("serial"), std::string::npos);
    EXPECT_NE(parse_error("tcp://bad host:1").find("host 'bad host'"), std::string::npos);
    EXPECT_NE(parse_error("com:ipport=1,port=192.168.?.2").find("host"), std::string::npos);
    EXPECT_NE(parse_error(R"(com:pipe,port=\\.\pipe\a?b)").find("'?'"), std::string::npos);
    parse_error("");
}
}  // namespace
