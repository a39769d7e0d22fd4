// Bytes handed to the decoder or an endpoint must outlive the events they produce; a temporary
// vector would be destroyed at once, so passing one must not compile. Compiled three times: as is
// (named vectors: must compile, so the test cannot pass for another reason), with
// TEMPORARY_FOR_ENDPOINT and with TEMPORARY_FOR_DECODER (each must fail).
#include <vector>

#include "kdcom/endpoint/endpoint.hpp"

int main() {
    kdcom::endpoint ep;
    kdcom::decode::decoder d;
    const std::vector<std::uint8_t> bytes{0x62};
#if defined(TEMPORARY_FOR_ENDPOINT)
    ep.receive(std::vector<std::uint8_t>{0x62}, kdcom::timestamp{});
#else
    ep.receive(bytes, kdcom::timestamp{});
#endif
#if defined(TEMPORARY_FOR_DECODER)
    d.push(std::vector<std::uint8_t>{0x62});
#else
    d.push(bytes);
#endif
}
