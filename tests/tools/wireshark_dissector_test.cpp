// The Wireshark dissector (tools/wireshark/kdcom.lua), run by tshark on captures the project
// produces: a real session recorded by kdcom-sim, and a hostile capture (garbage, break-ins,
// damaged and false frames, packets split across records). In each direction it must find exactly
// the events kdcom's own decoder finds (kdcom-dump --json), at the same offsets, and name the KD
// API of each data packet.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kdcom/capture/pcapng_writer.hpp"
#include "support/decode_helpers.hpp"
#include "support/net_pair.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;

std::string run(const std::string& command) {
    std::string out;
    FILE* p = ::popen((command + " 2>/dev/null").c_str(), "r");
    if (!p) return out;
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, p)) out.append(buffer, n);
    ::pclose(p);
    return out;
}

struct events_by_direction {
    std::vector<std::string> d2t, t2d;
    std::vector<std::string>& of(const std::string& dir) { return dir == "d2t" ? d2t : t2d; }
};

// "kind [type 0xid] @offset" per event, as the dissector's kdcom.event field has them.
events_by_direction from_tshark(const std::string& capture) {
    events_by_direction e;
    std::istringstream lines(run(std::string("'") + KDCOM_TSHARK_PATH + "' -X lua_script:" + KDCOM_DISSECTOR_PATH +
                                 " -r '" + capture + "' -T fields -e kdcom.dir -e kdcom.event -E occurrence=a -E "
                                 "aggregator='|'"));
    for (std::string line; std::getline(lines, line);) {
        const auto tab = line.find('\t');
        if (tab == std::string::npos || tab + 1 == line.size()) continue;  // a frame that completed nothing
        std::istringstream events(line.substr(tab + 1));
        for (std::string ev; std::getline(events, ev, '|');) e.of(line.substr(0, tab)).push_back(ev);
    }
    return e;
}

events_by_direction from_kdcom_dump(const std::string& capture, std::size_t& named) {
    events_by_direction e;
    std::istringstream lines(run(std::string("'") + KDCOM_DUMP_PATH + "' --json '" + capture + "'"));
    for (std::string line; std::getline(lines, line);) {
        const auto j = nlohmann::json::parse(line);
        if (j.at("kind") == "error" && j.at("error") == "stream ended inside a packet") continue;  // only at the end
        std::string ev = j.at("kind");
        if (j.contains("type")) {
            char id[32];
            std::snprintf(id, sizeof id, " 0x%08x", j.at("id").get<unsigned>());
            ev += " " + std::to_string(j.at("type").get<unsigned>()) + id;
        }
        ev += " @" + std::to_string(j.at("offset").get<std::uint64_t>());
        named += j.contains("api");
        e.of(j.at("dir")).push_back(ev);
    }
    return e;
}

void expect_same_events(const std::string& capture, std::size_t minimum_events) {
    std::size_t named = 0;
    const auto dump = from_kdcom_dump(capture, named);
    const auto wireshark = from_tshark(capture);
    ASSERT_GE(dump.d2t.size() + dump.t2d.size(), minimum_events);
    EXPECT_TRUE(wireshark.d2t == dump.d2t) << "debugger to target: tshark found " << wireshark.d2t.size()
                                           << " events, kdcom-dump " << dump.d2t.size();
    EXPECT_TRUE(wireshark.t2d == dump.t2d) << "target to debugger: tshark found " << wireshark.t2d.size()
                                           << " events, kdcom-dump " << dump.t2d.size();
    for (std::size_t i = 0; i < std::min(wireshark.d2t.size(), dump.d2t.size()); ++i)
        if (wireshark.d2t[i] != dump.d2t[i]) {
            ADD_FAILURE() << "first difference d2t #" << i << ": tshark '" << wireshark.d2t[i] << "', kdcom-dump '"
                          << dump.d2t[i] << "'";
            break;
        }
    for (std::size_t i = 0; i < std::min(wireshark.t2d.size(), dump.t2d.size()); ++i)
        if (wireshark.t2d[i] != dump.t2d[i]) {
            ADD_FAILURE() << "first difference t2d #" << i << ": tshark '" << wireshark.t2d[i] << "', kdcom-dump '"
                          << dump.t2d[i] << "'";
            break;
        }
    // The API names too: as many data packets named by both.
    const std::string apis = run(std::string("'") + KDCOM_TSHARK_PATH + "' -X lua_script:" + KDCOM_DISSECTOR_PATH +
                                 " -r '" + capture + "' -T fields -e kdcom.api -E occurrence=a -E aggregator='|'");
    // One line per frame; a frame can complete several packets.
    std::size_t tshark_named = 0;
    std::istringstream api_lines(apis);
    for (std::string l; std::getline(api_lines, l);) {
        std::istringstream names(l);
        for (std::string n; std::getline(names, n, '|');) tshark_named += !n.empty();
    }
    EXPECT_EQ(tshark_named, named);
}

TEST(WiresharkDissector, DecodesARealSessionAsKdcomDoes) {
    scratch_dir dir;
    const std::string capture = dir.path + "/session.pcapng";
    ASSERT_NE(run(std::string(KDCOM_SIM_PATH) + " --dump 1 --capture " + capture).find("all reads matched"),
              std::string::npos);
    expect_same_events(capture, 1000);
    const std::string names = run(std::string("'") + KDCOM_TSHARK_PATH + "' -X lua_script:" + KDCOM_DISSECTOR_PATH +
                                  " -r '" + capture + "' -T fields -e kdcom.api -E occurrence=a");
    for (const char* api : {"DbgKdPrintStringApi", "DbgKdExceptionStateChange", "DbgKdGetVersionApi",
                            "DbgKdReadPhysicalMemoryApi", "DbgKdWriteVirtualMemoryApi", "DbgKdContinueApi2"})
        EXPECT_NE(names.find(api), std::string::npos) << api;
}

TEST(WiresharkDissector, DecodesAHostileCaptureAsKdcomDoes) {
    scratch_dir dir;
    std::mt19937 rng(11);
    const wire::packet_type data_types[] = {wire::packet_type::state_manipulate, wire::packet_type::debug_io,
                                            wire::packet_type::state_change64, wire::packet_type::file_io};
    bytes streams[2];
    for (auto& stream : streams) {
        for (int i = 0; i < 400; ++i) {
            bytes body(rng() % 3 == 0 ? rng() % 4001 : rng() % 64);
            for (auto& b : body) b = static_cast<std::uint8_t>(rng());
            if (body.size() >= 4) body[0] = 0x30 + rng() % 0x20, body[1] = 0x31;  // something API-like
            bytes frame = rng() % 4 == 0 ? control_frame(wire::packet_type::acknowledge, 0x80800000 + rng() % 4)
                                         : data_frame(data_types[rng() % 4], 0x80800000 + rng() % 4, body);
            switch (rng() % 10) {
            case 0: frame[rng() % frame.size()] ^= 0x01; break;  // damaged anywhere
            case 1: frame.erase(frame.begin() + static_cast<std::ptrdiff_t>(rng() % frame.size()), frame.end()); break;
            case 2: frame.insert(frame.begin(), {0x30, 0x30, 0x62, 0x69, 0x69}); break;  // a run cut by a break-in
            case 3: frame.insert(frame.begin(), 0x62); break;
            default: break;
            }
            for (auto g = rng() % 3; g > 0; --g) stream.push_back(static_cast<std::uint8_t>(rng()));  // line noise
            append(stream, frame);
        }
        append(stream, control_frame(wire::packet_type::reset, 0));  // ends cleanly
    }
    bytes file;
    capture::pcapng::append_file_header(file, {"test", "hostile debugger", "hostile target"});
    std::size_t at[2] = {0, 0};
    std::uint64_t t = 1'700'000'000'000'000'000u;
    while (at[0] < streams[0].size() || at[1] < streams[1].size()) {
        const int side = at[0] < streams[0].size() && (at[1] >= streams[1].size() || rng() % 2) ? 0 : 1;
        const std::size_t n = std::min<std::size_t>(1 + rng() % 700, streams[side].size() - at[side]);
        capture::pcapng::append_record(file, t += 1000, side == 0 ? capture::flow::debugger_to_target
                                                                  : capture::flow::target_to_debugger,
                                       std::span(streams[side]).subspan(at[side], n));
        at[side] += n;
    }
    const std::string capture = dir.path + "/hostile.pcapng";
    std::ofstream(capture, std::ios::binary).write(reinterpret_cast<const char*>(file.data()),
                                                   static_cast<std::streamsize>(file.size()));
    expect_same_events(capture, 800);
}

}  // namespace
