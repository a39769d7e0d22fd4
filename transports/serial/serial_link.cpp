#include "kdcom/net/serial_link.hpp"

#include <cctype>

#include <asio/serial_port.hpp>

#include "kdcom/net/asio_byte_stream.hpp"

namespace kdcom::net {
namespace {

std::error_code apply(asio::serial_port& port, const transport::serial_settings& s) {
    using sp = asio::serial_port_base;
    std::error_code ec;
    port.set_option(sp::baud_rate(s.baud), ec);
    if (!ec) port.set_option(sp::character_size(s.data_bits), ec);
    if (!ec) {
        const auto parity = s.parity == transport::serial_settings::parity_kind::odd    ? sp::parity::odd
                            : s.parity == transport::serial_settings::parity_kind::even ? sp::parity::even
                                                                                         : sp::parity::none;
        port.set_option(sp::parity(parity), ec);
    }
    if (!ec) {
        const auto stop = s.stop_bits == transport::serial_settings::stop_kind::two ? sp::stop_bits::two
                          : s.stop_bits == transport::serial_settings::stop_kind::one_and_half
                              ? sp::stop_bits::onepointfive
                              : sp::stop_bits::one;
        port.set_option(sp::stop_bits(stop), ec);
    }
    if (!ec) {
        const auto flow = s.flow == transport::serial_settings::flow_kind::hardware   ? sp::flow_control::hardware
                          : s.flow == transport::serial_settings::flow_kind::software ? sp::flow_control::software
                                                                                       : sp::flow_control::none;
        port.set_option(sp::flow_control(flow), ec);
    }
    return ec;
}

class serial_link final : public link {
public:
    serial_link(asio::any_io_executor ex, std::string device, transport::serial_settings settings)
        : executor_(std::move(ex)), device_(serial_device_path(device)), settings_(settings) {}

    void async_open(stream_handler handler) override {
        asio::serial_port port(executor_);
        std::error_code ec;
        port.open(device_, ec);
        if (!ec) ec = apply(port, settings_);
        if (ec) {
            handler(ec, nullptr);
            return;
        }
        handler({}, std::make_unique<asio_byte_stream<asio::serial_port>>(std::move(port), describe()));
    }
    void close() override {}
    std::string describe() const override {
        return "serial " + device_ + " " + std::to_string(settings_.baud) + " bps";
    }
    asio::any_io_executor get_executor() const override { return executor_; }

private:
    asio::any_io_executor executor_;
    std::string device_;
    transport::serial_settings settings_;
};

}  // namespace

std::string serial_device_path(const std::string& device) {
#if defined(_WIN32)
    return device;
#else
    if (device.size() > 3 && (device.rfind("COM", 0) == 0 || device.rfind("com", 0) == 0)) {
        bool digits = true;
        for (std::size_t i = 3; i < device.size(); ++i) digits &= std::isdigit(static_cast<unsigned char>(device[i])) != 0;
        if (digits) {
            const int n = std::stoi(device.substr(3));
            if (n >= 1) return "/dev/ttyS" + std::to_string(n - 1);
        }
    }
    return device;
#endif
}

std::unique_ptr<link> make_serial_link(const asio::any_io_executor& ex, std::string device,
                                       const transport::serial_settings& settings) {
    return std::make_unique<serial_link>(ex, std::move(device), settings);
}

}  // namespace kdcom::net
