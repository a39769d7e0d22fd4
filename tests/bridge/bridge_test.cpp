// The VMM bridge end to end: a guest speaking KD PDUs over real shared memory, the bridge, and a
// debugger-role session over a Unix socket. The guest sees KdSendPacket/KdReceivePacket semantics
// with one crossing each way per call; the fast path answers physical reads from guest memory;
// a guest that misbehaves is dropped and the next one is served.
#include <gtest/gtest.h>

#include <random>

#include <asio/local/stream_protocol.hpp>
#include <asio/write.hpp>

#include "kdcom/bridge/bridge.hpp"
#include "kdcom/decode/decoder.hpp"
#include "kdcom/kd/manipulate.hpp"
#include "kdcom/kd/state_change.hpp"
#include "kdcom/shm/kd_pdu.hpp"
#include "support/kd_messages.hpp"
#include "kdcom/net/faulty_link.hpp"
#include "support/net_pair.hpp"
#include "support/raw_shm_guest.hpp"
#include "support/shm_guest_connection.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;
using wire::packet_type;

// The bridge with a guest attached over shm:// and, optionally, a debugger session.
struct bridge_rig {
    asio::io_context io;
    scratch_dir dir;
    std::string name = unique_shm_name();
    std::shared_ptr<bridge::bridge> bridge;
    std::shared_ptr<net::session> debugger;
    std::unique_ptr<net::link> guest_link;
    std::unique_ptr<net::shm_connection> guest;
    std::vector<std::string> notices;
    std::uint32_t next_sequence = 1;

    // `loss` and `corrupt`: what the debugger's link does to what it writes; `shm`: the bridge's
    // guest channel.
    explicit bridge_rig(bridge::options o = {}, bool with_debugger = true, double loss = 0, double corrupt = 0,
                        net::shm_options shm = {}) {
        std::error_code ec;
        auto shm_host = net::make_shm_host(io.get_executor(), name, shm, ec);
        auto listener = net::make_unix_listener(io.get_executor(), dir.path + "/kd.sock", ec);
        if (ec) throw std::system_error(ec);
        bridge = bridge::bridge::create(std::move(shm_host), std::move(listener), std::move(o));
        bridge->set_notice_handler([this](const std::string& n) { notices.push_back(n); });
        bridge->start();
        if (with_debugger) {
            endpoint_config d{.role = role::debugger};
            d.ack_timeout = 50ms;
            std::unique_ptr<net::link> client = net::make_unix_client(io.get_executor(), dir.path + "/kd.sock");
            if (loss > 0 || corrupt > 0) client = std::make_unique<net::faulty_link>(std::move(client), net::link_faults{.loss = loss, .corrupt = corrupt, .seed = 42});
            debugger = net::session::create(std::move(client), d);
            debugger->start();
        }
        attach_guest();
    }
    ~bridge_rig() {
        if (debugger) debugger->close();
        bridge->close();
        io.run_for(30ms);
    }

    void attach_guest() {
        guest.reset();
        guest = open_shm_guest(io, name, guest_link, std::chrono::steady_clock::now() + 10s);
        if (!guest) throw std::runtime_error("guest could not attach");
    }

    template <class Predicate>
    bool run_until(Predicate done, std::chrono::milliseconds limit = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(5ms);
        return done();
    }

    // One guest call and its answer (the answer's bytes stay in `answer_bytes`).
    bytes answer_bytes;
    std::optional<shm::kd_pdu> call(shm::kd_pdu pdu, std::chrono::milliseconds limit = 10s) {
        pdu.sequence = next_sequence++;
        bytes message(shm::kd_pdu_size(pdu));
        std::error_code ec;
        shm::encode_kd_pdu(pdu, message, ec);
        guest->async_send_message(KDCOM_SHM_KD_PDU, message, [](std::error_code, std::size_t) {});
        answer_bytes.assign(guest->max_message(), 0);
        std::optional<std::size_t> got;
        guest->async_receive_message(answer_bytes, [&](std::error_code e, std::uint16_t, std::size_t n) {
            if (!e) got = n;
        });
        if (!run_until([&] { return got.has_value(); }, limit)) return std::nullopt;
        answer_bytes.resize(*got);
        shm::kd_pdu a;
        if (shm::decode_kd_pdu(answer_bytes, a)) return std::nullopt;
        EXPECT_EQ(a.sequence, pdu.sequence) << "an answer repeats its call's sequence";
        return a;
    }

    static shm::kd_pdu send(packet_type type, std::span<const std::uint8_t> header, std::span<const std::uint8_t> data = {}) {
        shm::kd_pdu p;
        p.operation = KDCOM_SHM_PDU_SEND;
        p.packet_type = static_cast<std::uint16_t>(type);
        p.header = header;
        p.data = data;
        return p;
    }
    static shm::kd_pdu receive(packet_type type, std::uint32_t timeout_ms, std::uint16_t header_capacity = 0x38,
                               std::uint16_t data_capacity = 4000 - 0x38) {
        shm::kd_pdu p;
        p.operation = KDCOM_SHM_PDU_RECEIVE;
        p.packet_type = static_cast<std::uint16_t>(type);
        p.status = timeout_ms;
        p.header_capacity = header_capacity;
        p.data_capacity = data_capacity;
        return p;
    }

    // The debugger's next packet.
    std::optional<net::received_packet> debugger_receive() {
        std::optional<net::received_packet> got;
        debugger->async_receive([&](std::error_code ec, net::received_packet p) {
            if (!ec) got = std::move(p);
        });
        run_until([&] { return got.has_value(); });
        return got;
    }
};

TEST(Bridge, TheGuestsCallsBecomeKdcomPacketsWithOneCrossingEachWay) {
    bridge_rig rig;
    // KdSendPacket(STATE_CHANGE64): completes once the debugger has acknowledged it. The guest
    // could take a packet along, but the debugger has sent none: nothing comes.
    const bytes state_change = breakpoint_state_change();
    auto send_state_change = bridge_rig::send(packet_type::state_change64, state_change);
    send_state_change.status = KDCOM_SHM_SEND_TAKES_PACKET;
    const auto sent = rig.call(send_state_change);
    ASSERT_TRUE(sent);
    EXPECT_EQ(sent->operation, KDCOM_SHM_PDU_SENT);
    EXPECT_EQ(sent->status, KDCOM_SHM_SEND_ACKNOWLEDGED);
    EXPECT_TRUE(sent->header.empty() && sent->data.empty());
    const auto at_debugger = rig.debugger_receive();
    ASSERT_TRUE(at_debugger);
    EXPECT_EQ(at_debugger->type, packet_type::state_change64);
    EXPECT_EQ(at_debugger->body, state_change);

    // KdReceivePacket(STATE_MANIPULATE) while the debugger asks for the version.
    const bytes request = manipulate(kd::manipulate_api::get_version);
    rig.debugger->async_send(packet_type::state_manipulate, request, {}, [](std::error_code) {});
    const auto received = rig.call(bridge_rig::receive(packet_type::state_manipulate, 5000));
    ASSERT_TRUE(received);
    EXPECT_EQ(received->operation, KDCOM_SHM_PDU_RECEIVED);
    EXPECT_EQ(received->status, KDCOM_SHM_RECEIVE_OK);
    EXPECT_EQ(bytes(received->header.begin(), received->header.end()), request) << "the 0x38-byte header";
    EXPECT_TRUE(received->data.empty());

    // The reply, with data, goes back the same way.
    const bytes reply = manipulate(kd::manipulate_api::get_version);
    const bytes data(100, 0x77);
    ASSERT_TRUE(rig.call(bridge_rig::send(packet_type::state_manipulate, reply, data)));
    const auto reply_at_debugger = rig.debugger_receive();
    ASSERT_TRUE(reply_at_debugger);
    EXPECT_EQ(reply_at_debugger->body.size(), reply.size() + data.size());

    const auto s = rig.bridge->stats();
    EXPECT_EQ(s.guest_calls, 3u);
    EXPECT_EQ(s.guest_answers, 3u) << "one crossing each way per call";
    EXPECT_EQ(s.packets_to_debugger, 2u);
    EXPECT_EQ(s.packets_to_guest, 1u);
}

// The debugger answers the guest's packet at once, so its acknowledgement and its next request
// reach the bridge in one read: a guest whose SEND can take a packet gets that request with SENT
// and is spared a RECEIVE; one that cannot (a guest built before this existed) gets it from its
// RECEIVE as always.
TEST(Bridge, TheDebuggersNextRequestComesWithTheAnswerToASendThatCanTakeIt) {
    for (const bool takes_packet : {true, false}) {
        SCOPED_TRACE(takes_packet ? "the SEND takes a packet" : "the SEND takes none");
        bridge_rig rig;
        const bytes request = manipulate(kd::manipulate_api::read_physical_memory, 0x2000, 3944);
        rig.debugger->async_receive([&](std::error_code ec, net::received_packet) {
            if (!ec) rig.debugger->async_send(packet_type::state_manipulate, request, {}, [](std::error_code) {});
        });
        const bytes state_change = breakpoint_state_change();
        auto call = bridge_rig::send(packet_type::state_change64, state_change);
        if (takes_packet) call.status = KDCOM_SHM_SEND_TAKES_PACKET;
        const auto sent = rig.call(call);
        ASSERT_TRUE(sent);
        EXPECT_EQ(sent->operation, KDCOM_SHM_PDU_SENT);
        EXPECT_TRUE(sent->header.empty()) << "a carried body travels whole as data";
        const bytes carried(sent->data.begin(), sent->data.end());  // the next call reuses the buffer
        const auto receive = rig.call(bridge_rig::receive(packet_type::state_manipulate, 200));
        ASSERT_TRUE(receive);
        if (takes_packet) {
            EXPECT_EQ(sent->status, KDCOM_SHM_SEND_ACKNOWLEDGED | KDCOM_SHM_SENT_CARRIES_PACKET);
            EXPECT_EQ(sent->packet_type, static_cast<std::uint16_t>(packet_type::state_manipulate));
            EXPECT_TRUE(carried == request);
            EXPECT_EQ(receive->status, KDCOM_SHM_RECEIVE_TIMEOUT) << "the carried packet is the guest's, not given twice";
            EXPECT_EQ(rig.bridge->stats().packets_carried, 1u);
        } else {
            EXPECT_EQ(sent->status, KDCOM_SHM_SEND_ACKNOWLEDGED);
            EXPECT_TRUE(carried.empty());
            EXPECT_EQ(receive->status, KDCOM_SHM_RECEIVE_OK);
            EXPECT_TRUE(bytes(receive->header.begin(), receive->header.end()) == request);
            EXPECT_EQ(rig.bridge->stats().packets_carried, 0u);
        }
        EXPECT_EQ(rig.bridge->stats().packets_to_guest, 1u);
    }
}

TEST(Bridge, OneCrossingEachWayPerCallWhateverTheDebuggerLinkLoses) {
    bridge::options o;
    o.endpoint.ack_timeout = 50ms;
    bridge_rig rig(o, true, /*loss=*/0.1, /*corrupt=*/0.05);
    ASSERT_EQ(rig.call(bridge_rig::send(packet_type::state_change64, breakpoint_state_change()))->status,
              KDCOM_SHM_SEND_ACKNOWLEDGED);
    ASSERT_TRUE(rig.debugger_receive());
    constexpr int rounds = 100;
    for (int i = 0; i < rounds; ++i) {
        // The debugger asks; the guest's one RECEIVE gets the request; its one SEND answers.
        const bytes request = manipulate(kd::manipulate_api::read_virtual_memory, 0x1000u * static_cast<unsigned>(i), 2000);
        rig.debugger->async_send(packet_type::state_manipulate, request, {}, [](std::error_code) {});
        const auto got = rig.call(bridge_rig::receive(packet_type::state_manipulate, 20000), 30s);
        ASSERT_TRUE(got);
        ASSERT_EQ(got->status, KDCOM_SHM_RECEIVE_OK) << i;
        ASSERT_EQ(bytes(got->header.begin(), got->header.end()), request) << i;
        const bytes data(2000, static_cast<std::uint8_t>(i));
        const auto sent = rig.call(bridge_rig::send(packet_type::state_manipulate, request, data), 30s);
        ASSERT_TRUE(sent);
        ASSERT_EQ(sent->status, KDCOM_SHM_SEND_ACKNOWLEDGED) << i;
        const auto reply = rig.debugger_receive();
        ASSERT_TRUE(reply);
        ASSERT_EQ(reply->body.back(), static_cast<std::uint8_t>(i));
    }
    const auto s = rig.bridge->stats();
    EXPECT_EQ(s.guest_calls, 1u + 2 * rounds);
    EXPECT_EQ(s.guest_answers, s.guest_calls) << "exactly one answer per call: retransmits never reach the guest";
    const auto& target = rig.bridge->debugger_session().protocol().stats();
    const auto& debugger = rig.debugger->protocol().stats();
    EXPECT_GT(target.retransmissions + debugger.retransmissions, 0u) << "the link really lost packets";
    EXPECT_GT(target.framing_errors + debugger.framing_errors + target.resends_received + debugger.resends_received, 0u)
        << "and damaged some";
}

// Rounds of a debugger request answered by the guest after `think` (the guest's time to work out
// its answer); returns how many reads the debugger made.
int debugger_reads_for_answered_requests(bridge::options o, int rounds, std::chrono::milliseconds think) {
    bridge_rig rig(std::move(o));
    if (!rig.call(bridge_rig::send(packet_type::state_change64, breakpoint_state_change())) || !rig.debugger_receive())
        return -1;
    int reads = 0;
    rig.debugger->set_tap([&](net::direction d, timestamp, std::span<const std::uint8_t>) { reads += d == net::direction::from_peer; });
    for (int i = 0; i < rounds; ++i) {
        const bytes request = manipulate(kd::manipulate_api::read_virtual_memory, 0x1000u * static_cast<unsigned>(i), 2000);
        rig.debugger->async_send(packet_type::state_manipulate, request, {}, [](std::error_code) {});
        if (!rig.call(bridge_rig::receive(packet_type::state_manipulate, 5000))) return -1;
        rig.io.run_for(think);
        if (!rig.call(bridge_rig::send(packet_type::state_manipulate, request, bytes(2000, 0x11)))) return -1;
        if (!rig.debugger_receive()) return -1;
    }
    return reads;
}

TEST(Bridge, AnAcknowledgementWaitsForTheGuestsAnswerUpToTheAckDelay) {
    constexpr int rounds = 10;
    EXPECT_EQ(bridge::options{}.session.ack_delay, 1ms) << "the default: far below any debugger's timeout";
    bridge::options patient;
    patient.session.ack_delay = 500ms;
    const int together = debugger_reads_for_answered_requests(patient, rounds, 20ms);
    EXPECT_GE(together, rounds);
    EXPECT_LE(together, rounds + 1) << "each acknowledgement came in one read with the guest's answer";
    bridge::options at_once;
    at_once.session.ack_delay = {};
    EXPECT_GE(debugger_reads_for_answered_requests(at_once, rounds, 20ms), 2 * rounds)
        << "with no delay, the acknowledgement and the answer are two reads";
}

// kdcom.dll would find a debugger's RESET waiting on the line at its next KdReceivePacket and
// return RESEND, so the kernel reports its state to the new debugger. The bridge answers the
// handshake itself at once; a guest that was between calls then learns it from its next receive,
// unless it reported its state in the meantime.
TEST(Bridge, AResetWhileTheGuestIsBetweenCallsIsToldToItsNextReceive) {
    bridge_rig rig;
    const auto resets_seen = [&] { return rig.bridge->debugger_session().protocol().stats().resets_received; };
    ASSERT_TRUE(rig.call(bridge_rig::send(packet_type::state_change64, breakpoint_state_change())));
    ASSERT_TRUE(rig.debugger_receive());

    // The debugger starts over while the kernel works on something (no receive pending).
    const auto before = resets_seen();
    rig.debugger->start_reset();
    ASSERT_TRUE(rig.run_until([&] { return resets_seen() > before; }));
    auto r = rig.call(bridge_rig::receive(packet_type::state_manipulate, 1000));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, KDCOM_SHM_RECEIVE_RESEND) << "send the state change again";
    r = rig.call(bridge_rig::receive(packet_type::state_manipulate, 100));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, KDCOM_SHM_RECEIVE_TIMEOUT) << "told once";

    // A reset followed by a state change anyway (the kernel broke in): nothing more to tell.
    const auto again = resets_seen();
    rig.debugger->start_reset();
    ASSERT_TRUE(rig.run_until([&] { return resets_seen() > again; }));
    ASSERT_EQ(rig.call(bridge_rig::send(packet_type::state_change64, breakpoint_state_change()))->status,
              KDCOM_SHM_SEND_ACKNOWLEDGED);
    r = rig.call(bridge_rig::receive(packet_type::state_manipulate, 100));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, KDCOM_SHM_RECEIVE_TIMEOUT) << "the new debugger has the state already";
    EXPECT_EQ(rig.bridge->stats().resends_to_guest, 1u);
}

TEST(Bridge, AResetInTheSameReadAsTheAckOfTheStateChangeStillHasTheKernelReportAgain) {
    // Seen with pykdclient: its ACK of the state change and its next RESET arrived in one read.
    // The endpoint reports the ACK, then the RESET; the bridge learnt of the send's completion
    // after the reset and took the state as reported, so the kernel never sent it again.
    bridge_rig rig({}, /*with_debugger=*/false);
    asio::local::stream_protocol::socket raw(rig.io);
    raw.connect(asio::local::stream_protocol::endpoint(rig.dir.path + "/kd.sock"));
    decode::decoder from_bridge;
    std::array<std::uint8_t, 4096> buffer{};
    auto read_packet = [&](packet_type type) -> std::optional<std::uint32_t> {
        for (int reads = 0; reads < 100; ++reads) {
            while (auto e = from_bridge.next())
                if (const auto* p = std::get_if<decode::data_packet>(&*e); p && p->header.type == type) return p->header.id;
            std::size_t n = 0;
            bool done = false;
            raw.async_read_some(asio::buffer(buffer), [&](std::error_code ec, std::size_t got) {
                n = ec ? 0 : got;
                done = true;
            });
            if (!rig.run_until([&] { return done; }, 2s) || n == 0) return std::nullopt;
            from_bridge.push(std::span(buffer).first(n));
        }
        return std::nullopt;
    };

    // The kernel reports its stop; the guest's SEND is answered once the debugger acknowledges.
    const bytes state = breakpoint_state_change();  // the call's spans point into it
    shm::kd_pdu sent_call = bridge_rig::send(packet_type::state_change64, state);
    sent_call.sequence = rig.next_sequence++;
    bytes message(shm::kd_pdu_size(sent_call));
    std::error_code ec;
    shm::encode_kd_pdu(sent_call, message, ec);
    rig.guest->async_send_message(KDCOM_SHM_KD_PDU, message, [](std::error_code, std::size_t) {});
    const auto id = read_packet(packet_type::state_change64);
    ASSERT_TRUE(id);
    bytes ack_then_reset = control_frame(packet_type::acknowledge, *id & ~wire::sync_packet_id);
    append(ack_then_reset, control_frame(packet_type::reset, 0x8080));
    asio::write(raw, asio::buffer(ack_then_reset));
    bytes answer(rig.guest->max_message());
    std::optional<std::size_t> got;
    rig.guest->async_receive_message(answer, [&](std::error_code e, std::uint16_t, std::size_t n) {
        if (!e) got = n;
    });
    ASSERT_TRUE(rig.run_until([&] { return got.has_value(); }));

    const auto r = rig.call(bridge_rig::receive(packet_type::state_manipulate, 500));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, KDCOM_SHM_RECEIVE_RESEND) << "the debugger reset after taking the state: report it again";
}

TEST(Bridge, PollingForBreakInAnswersAtOnce) {
    bridge_rig rig;
    ASSERT_TRUE(rig.call(bridge_rig::send(packet_type::state_change64, breakpoint_state_change())));
    auto poll = rig.call(bridge_rig::receive(packet_type::poll_breakin, 0));
    ASSERT_TRUE(poll);
    EXPECT_EQ(poll->status, KDCOM_SHM_RECEIVE_TIMEOUT) << "no break-in yet";
    rig.debugger->send_breakin();
    rig.run_until([] { return false; }, 50ms);
    poll = rig.call(bridge_rig::receive(packet_type::poll_breakin, 0));
    ASSERT_TRUE(poll);
    EXPECT_EQ(poll->status, KDCOM_SHM_RECEIVE_OK) << "the debugger's 'b'";
    poll = rig.call(bridge_rig::receive(packet_type::poll_breakin, 0));
    ASSERT_TRUE(poll);
    EXPECT_EQ(poll->status, KDCOM_SHM_RECEIVE_TIMEOUT) << "taken once";
}

// The kernel reports its state first, as a stopped kernel has (before that, its first receive
// would be told of the debugger's reset handshake).
void report_state(bridge_rig& rig) {
    ASSERT_EQ(rig.call(bridge_rig::send(packet_type::state_change64, breakpoint_state_change()))->status,
              KDCOM_SHM_SEND_ACKNOWLEDGED);
    ASSERT_TRUE(rig.debugger_receive());
}

TEST(Bridge, AReceiveTimesOutAndPacketsOfOtherTypesAreDropped) {
    bridge_rig rig;
    report_state(rig);
    const auto start = std::chrono::steady_clock::now();
    auto r = rig.call(bridge_rig::receive(packet_type::state_manipulate, 100));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, KDCOM_SHM_RECEIVE_TIMEOUT);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);

    // A DEBUG_IO packet while the kernel waits for a manipulate: dropped, as kdcom.dll does.
    rig.debugger->async_send(packet_type::debug_io, bytes(16, 0), {}, [](std::error_code) {});
    rig.debugger->async_send(packet_type::state_manipulate, manipulate(kd::manipulate_api::get_version), {},
                             [](std::error_code) {});
    r = rig.call(bridge_rig::receive(packet_type::state_manipulate, 5000));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, KDCOM_SHM_RECEIVE_OK);
    EXPECT_EQ(rig.bridge->stats().packets_dropped, 1u);
}

TEST(Bridge, APacketLargerThanTheGuestsBuffersIsAnsweredWithResend) {
    bridge_rig rig;
    report_state(rig);
    rig.debugger->async_send(packet_type::state_manipulate, manipulate(kd::manipulate_api::write_virtual_memory),
                             bytes(1000, 1), [](std::error_code) {});
    const auto r = rig.call(bridge_rig::receive(packet_type::state_manipulate, 5000, 0x38, 500));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, KDCOM_SHM_RECEIVE_RESEND) << "never cut a packet to fit";
}

TEST(Bridge, WithNoDebuggerADroppableSendGivesUpAndTheGuestGoesOn) {
    bridge::options o;
    o.endpoint.ack_timeout = 20ms;
    bridge_rig rig(o, /*with_debugger=*/false);
    bytes print(16, 0);
    print[0] = 0x30;  // DbgKdPrintStringApi
    print[1] = 0x32;
    const auto r = rig.call(bridge_rig::send(packet_type::debug_io, print, bytes{'h', 'i', '\n'}), 20s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, KDCOM_SHM_SEND_GAVE_UP) << "DbgPrint does not hang a machine with no debugger";
}

TEST(Bridge, TheFastPathAnswersPhysicalReadsFromGuestMemoryWithoutTheGuest) {
    bytes memory(1 << 20);
    for (std::size_t i = 0; i < memory.size(); ++i) memory[i] = static_cast<std::uint8_t>(i * 7 + i / 4096);
    bridge::options o;
    o.read_physical = [&](std::uint64_t address, std::span<std::uint8_t> out) -> std::size_t {
        if (address >= memory.size()) return 0;
        const std::size_t n = std::min<std::size_t>(out.size(), memory.size() - address);
        std::copy_n(memory.begin() + static_cast<long>(address), n, out.begin());
        return n;
    };
    bridge_rig rig(std::move(o));
    ASSERT_TRUE(rig.call(bridge_rig::send(packet_type::state_change64, breakpoint_state_change())));
    ASSERT_TRUE(rig.debugger_receive());
    const auto calls_before = rig.bridge->stats().guest_calls;

    for (std::uint64_t address : {std::uint64_t{0}, std::uint64_t{0x12345}, std::uint64_t{(1 << 20) - 100}}) {
        rig.debugger->async_send(packet_type::state_manipulate,
                                 manipulate(kd::manipulate_api::read_physical_memory, address, 3000), {},
                                 [](std::error_code) {});
        const auto reply = rig.debugger_receive();
        ASSERT_TRUE(reply);
        const auto h = kd::decode_manipulate(reply->body);
        ASSERT_TRUE(h);
        EXPECT_EQ(h->api, kd::manipulate_api::read_physical_memory);
        EXPECT_EQ(h->return_status, 0u);
        const std::size_t expected = std::min<std::size_t>(3000, memory.size() - address);
        EXPECT_EQ(h->memory.actual_bytes, expected);
        ASSERT_EQ(reply->body.size(), kd::manipulate_header_size + expected);
        EXPECT_TRUE(std::equal(reply->body.begin() + kd::manipulate_header_size, reply->body.end(),
                               memory.begin() + static_cast<long>(address)));
    }
    // Memory the host cannot read is answered as the kernel would: unsuccessful, no bytes.
    rig.debugger->async_send(packet_type::state_manipulate,
                             manipulate(kd::manipulate_api::read_physical_memory, 1 << 21, 3000), {},
                             [](std::error_code) {});
    const auto refused = rig.debugger_receive();
    ASSERT_TRUE(refused);
    const auto h = kd::decode_manipulate(refused->body);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->return_status, 0xC0000001u) << "STATUS_UNSUCCESSFUL";
    EXPECT_EQ(h->memory.actual_bytes, 0u);
    EXPECT_EQ(refused->body.size(), kd::manipulate_header_size);
    EXPECT_EQ(rig.bridge->stats().fast_path_reads, 4u);
    EXPECT_EQ(rig.bridge->stats().guest_calls, calls_before) << "the guest was not woken";
}

TEST(Bridge, AGuestWritingNonsenseIsDroppedAndTheNextGuestIsServed) {
    bridge_rig rig;
    // Not a PDU at all.
    rig.guest->async_send_message(KDCOM_SHM_KD_PDU, bytes{1, 2, 3}, [](std::error_code, std::size_t) {});
    EXPECT_TRUE(rig.run_until([&] { return rig.bridge->stats().guest_errors == 1; }));
    // A rebooted (or replaced) guest attaches and works.
    rig.attach_guest();
    const auto r = rig.call(bridge_rig::send(packet_type::state_change64, breakpoint_state_change()));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, KDCOM_SHM_SEND_ACKNOWLEDGED);
    EXPECT_EQ(rig.bridge->stats().guests_attached, 2u);
    bool dropped_said = false;
    for (const auto& n : rig.notices) dropped_said |= n.rfind("guest dropped: ", 0) == 0;
    EXPECT_TRUE(dropped_said) << "a clear message";
}

TEST(Bridge, AGuestThatCallsAgainBeforeItsAnswerIsDropped) {
    // No debugger: the first send stays in flight. The bridge's channel would poll for ten
    // seconds after a message, but the guest awaits an answer, so the bridge sleeps at once.
    net::shm_options long_polling;
    long_polling.poll_window = 10s;
    bridge_rig rig({}, /*with_debugger=*/false, 0, 0, long_polling);
    const bytes state_change = breakpoint_state_change();  // the PDU views it
    shm::kd_pdu first = bridge_rig::send(packet_type::state_change64, state_change);
    bytes message(shm::kd_pdu_size(first));
    std::error_code ec;
    shm::encode_kd_pdu(first, message, ec);
    rig.guest->async_send_message(KDCOM_SHM_KD_PDU, message, [](std::error_code, std::size_t) {});
    ASSERT_TRUE(rig.run_until([&] { return rig.bridge->stats().guest_calls == 1; }));
    rig.run_until([] { return false; }, 20ms);
    const auto rung_before = rig.guest->stats().doorbells_rung;
    rig.guest->async_send_message(KDCOM_SHM_KD_PDU, message, [](std::error_code, std::size_t) {});
    EXPECT_TRUE(rig.run_until([&] { return rig.bridge->stats().guest_errors == 1; })) << "KdSendPacket is not re-entrant";
    EXPECT_EQ(rig.guest->stats().doorbells_rung, rung_before + 1)
        << "the bridge was asleep while the guest awaited its answer, and the call out of turn woke it";
}

TEST(Bridge, AGuestThatCallsAndNeverReadsItsAnswersIsStalledAndDroppedNotQueuedFor) {
    net::shm_options shm;
    shm.stall_timeout = 300ms;
    shm.region.ring_size = 4096;  // room for about 170 answers
    shm.region.max_message = 1024;
    bridge_rig rig({}, true, 0, 0, shm);
    // Polls for break-in as fast as the ring takes the calls, never reading an answer.
    shm::kd_pdu poll = bridge_rig::receive(packet_type::poll_breakin, 0);
    bytes message(shm::kd_pdu_size(poll));
    std::error_code ec;
    shm::encode_kd_pdu(poll, message, ec);
    std::uint64_t sent = 0;
    std::function<void()> flood = [&] {
        rig.guest->async_send_message(KDCOM_SHM_KD_PDU, message, [&](std::error_code e, std::size_t) {
            if (e) return;
            ++sent;
            flood();
        });
    };
    flood();
    rig.run_until([&] { return rig.bridge->stats().guests_attached == 1 && !rig.notices.empty() &&
                               rig.notices.back().rfind("guest dropped", 0) == 0; },
                  5s);
    const auto calls = rig.bridge->stats().guest_calls;
    // The bridge takes calls only while their answers fit: the guest's ring of answers, and a
    // few more waiting; then it stops reading, its answer stalls, and the guest is dropped.
    EXPECT_LT(calls, 400u) << "calls taken while their answers could not be written";
    ASSERT_FALSE(rig.notices.empty());
    EXPECT_EQ(rig.notices.back(), "guest dropped: " + make_error_code(errc::peer_stalled).message());
    EXPECT_GT(sent, calls) << "the guest went on calling";
}

TEST(Bridge, AScribblingGuestCannotHarmTheBridge) {
    bridge_rig rig;
    rig.guest.reset();  // this guest leaves; a hostile one takes its place
    rig.run_until([] { return false; }, 20ms);
    {
        raw_shm_guest raw(rig.name);
        rig.run_until([&] { return rig.bridge->stats().guests_attached == 2; });
        raw.attach();
        std::mt19937_64 rng(3);
        auto* words = reinterpret_cast<std::uint64_t*>(raw.base);
        for (int i = 0; i < 200000; ++i) {
            // One write in eight lands on the header and counters (the first 40 words), the rest
            // anywhere; values small enough to pass some checks and fail later ones.
            const std::size_t word = i % 8 == 0 ? rng() % 40 : rng() % (raw.size / 8);
            std::atomic_ref<std::uint64_t>(words[word]).store(rng() % 4096, std::memory_order_relaxed);
            if (i % 64 == 0) raw.ring_host();
            if (i % 1024 == 0) rig.io.poll();
        }
        rig.run_until([] { return false; }, 50ms);
        std::string said;
        for (const auto& n : rig.notices) said += n + "; ";
        EXPECT_EQ(rig.bridge->stats().guest_errors, 1u) << "the scribbling was noticed and that guest dropped; notices: " << said;
    }
    rig.attach_guest();
    const auto r = rig.call(bridge_rig::send(packet_type::state_change64, breakpoint_state_change()));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, KDCOM_SHM_SEND_ACKNOWLEDGED) << "the bridge serves the next guest";
}

}  // namespace
