// Encodes an ACK and decodes it again through the installed headers.
#include <cstdio>
#include <kdcom/kdcom.hpp>

int main() {
    std::uint8_t frame[kdcom::wire::control_packet_size];
    std::error_code ec;
    kdcom::wire::encode_control_packet(frame, kdcom::wire::packet_type::acknowledge,
                                       kdcom::wire::initial_packet_id, ec);
    kdcom::decode::decoder decoder;
    decoder.push(frame);
    auto event = decoder.next();
    if (ec || !event) return 1;
    std::printf("%s\n", kdcom::decode::describe(*event).c_str());
    return 0;
}
