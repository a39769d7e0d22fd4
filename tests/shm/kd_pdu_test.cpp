// KD PDUs: every operation survives encoding and decoding, the fixed part is the C layout's, and a
// PDU whose lengths do not account for its bytes exactly is refused.
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "kdcom/shm/kd_pdu.hpp"

namespace {
using namespace kdcom::shm;
using bytes = std::vector<std::uint8_t>;

static_assert(offsetof(kdcom_shm_kd_pdu, sequence) == 4 && offsetof(kdcom_shm_kd_pdu, status) == 8 &&
              offsetof(kdcom_shm_kd_pdu, header_length) == 12 && offsetof(kdcom_shm_kd_pdu, data_length) == 14);

bytes encode(const kd_pdu& p) {
    bytes out(kd_pdu_size(p));
    std::error_code ec;
    EXPECT_EQ(encode_kd_pdu(p, out, ec), out.size());
    EXPECT_FALSE(ec);
    return out;
}

TEST(KdPdu, ASendAndItsAnswerRoundTrip) {
    const bytes header(0x38, 0x31), data = {1, 2, 3};
    kd_pdu send{KDCOM_SHM_PDU_SEND, 2, 77, 0, header, data};
    const bytes wire = encode(send);
    ASSERT_EQ(wire.size(), 16u + 0x38 + 3);
    EXPECT_EQ(wire[0], KDCOM_SHM_PDU_SEND);
    EXPECT_EQ(wire[12], 0x38) << "little-endian lengths, as the C struct has them on x86";
    kd_pdu got;
    ASSERT_FALSE(decode_kd_pdu(wire, got));
    EXPECT_EQ(got.operation, KDCOM_SHM_PDU_SEND);
    EXPECT_EQ(got.packet_type, 2);
    EXPECT_EQ(got.sequence, 77u);
    EXPECT_EQ(bytes(got.header.begin(), got.header.end()), header);
    EXPECT_EQ(bytes(got.data.begin(), got.data.end()), data);

    const bytes answer = encode({KDCOM_SHM_PDU_SENT, 2, 77, KDCOM_SHM_SEND_GAVE_UP, {}, {}});
    ASSERT_FALSE(decode_kd_pdu(answer, got));
    EXPECT_EQ(got.status, KDCOM_SHM_SEND_GAVE_UP);
    EXPECT_TRUE(got.header.empty() && got.data.empty());
}

TEST(KdPdu, AReceiveCarriesBufferSizesAndATimeoutAndNoBytes) {
    kd_pdu receive{KDCOM_SHM_PDU_RECEIVE, 8, 5, 1000, {}, {}, 0x38, 4000};
    const bytes wire = encode(receive);
    ASSERT_EQ(wire.size(), 16u);
    kd_pdu got;
    ASSERT_FALSE(decode_kd_pdu(wire, got));
    EXPECT_EQ(got.packet_type, 8) << "a break-in poll";
    EXPECT_EQ(got.status, 1000u) << "the timeout";
    EXPECT_EQ(got.header_capacity, 0x38);
    EXPECT_EQ(got.data_capacity, 4000);
    EXPECT_TRUE(got.header.empty() && got.data.empty());

    const bytes header(16, 7), data(100, 9);
    const bytes received = encode({KDCOM_SHM_PDU_RECEIVED, 2, 5, KDCOM_SHM_RECEIVE_OK, header, data});
    ASSERT_FALSE(decode_kd_pdu(received, got));
    EXPECT_EQ(got.header.size(), 16u);
    EXPECT_EQ(got.data.size(), 100u);
}

TEST(KdPdu, LengthsThatDoNotAccountForEveryByteAreRefused) {
    const bytes header(8, 1), data(8, 2);
    bytes wire = encode({KDCOM_SHM_PDU_SEND, 2, 1, 0, header, data});
    kd_pdu got;
    const auto malformed = make_error_code(kdcom::errc::shm_malformed_pdu);
    EXPECT_EQ(decode_kd_pdu(std::span(wire).first(15), got), malformed) << "shorter than the fixed part";
    EXPECT_EQ(decode_kd_pdu(std::span(wire).first(wire.size() - 1), got), malformed) << "a byte missing";
    bytes longer = wire;
    longer.push_back(0);
    EXPECT_EQ(decode_kd_pdu(longer, got), malformed) << "a byte too many";
    bytes lying = wire;
    lying[14] = 0xFF;  // data_length claims far more than there is
    EXPECT_EQ(decode_kd_pdu(lying, got), malformed);
    bytes unknown = wire;
    unknown[0] = 9;
    EXPECT_EQ(decode_kd_pdu(unknown, got), malformed) << "unknown operation";
    bytes receive = encode({KDCOM_SHM_PDU_RECEIVE, 2, 1, 0, {}, {}, 10, 10});
    receive.push_back(0);
    EXPECT_EQ(decode_kd_pdu(receive, got), malformed) << "a receive carries no bytes";
}

TEST(KdPdu, EncodingChecksTheBufferAndThePartSizes) {
    const bytes data(70000);
    std::error_code ec;
    bytes out(100000);
    EXPECT_EQ(encode_kd_pdu({KDCOM_SHM_PDU_SEND, 2, 1, 0, {}, data}, out, ec), 0u);
    EXPECT_EQ(ec, kdcom::errc::body_too_large);
    bytes small(20);
    const bytes header(8);
    EXPECT_EQ(encode_kd_pdu({KDCOM_SHM_PDU_SEND, 2, 1, 0, header, header}, small, ec), 0u);
    EXPECT_EQ(ec, kdcom::errc::buffer_too_small);
}

}  // namespace
