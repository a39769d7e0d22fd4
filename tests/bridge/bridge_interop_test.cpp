// The bridge, with the fake kernel behind it as a guest, against models of other debuggers
// (include/kdcom/sim/peers/) and kdcom's own default debugger, in real time over a Unix socket,
// clean and with 1% of the debugger's writes lost, damaged, duplicated or preceded by noise: a
// debugger attaches to the running kernel, breaks in, asks for the version, reads memory with
// every byte checked against the image, continues, breaks in again, reads, and detaches; then a
// second debugger of the same kind connects anew and does it again. (pykdclient, which never
// retransmits, runs clean only: any loss of its own writes stops it, by its design.)
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "kdcom/guest/fake_kernel.hpp"
#include "kdcom/net/faulty_link.hpp"
#include "kdcom/sim/kdcom_debugger.hpp"
#include "kdcom/sim/peers/model_debugger.hpp"
#include "support/node_runner.hpp"
#include "support/running_bridge.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;

constexpr std::uint64_t kern_base = 0xfffff80000000000u;
// The debugging session reads below kern_base + 1 GiB; the image is a pure function of the
// address, so its size costs nothing.
constexpr std::uint64_t image_size = (1ull << 30) + 8192;

struct debugger_kind {
    const char* name;
    bool recovers_from_faults = true;
    std::function<std::unique_ptr<sim::node>(const sim::session_plan&)> make;
    std::function<const sim::debugging_session&(const sim::node&)> session;
};

template <class Node>
debugger_kind kind_of(const char* name, std::function<std::unique_ptr<Node>(const sim::session_plan&)> make) {
    return {name, true, [make](const sim::session_plan& p) -> std::unique_ptr<sim::node> { return make(p); },
            [](const sim::node& n) -> const sim::debugging_session& { return static_cast<const Node&>(n).session(); }};
}

std::vector<debugger_kind> debugger_kinds() {
    auto model_of = [](const char* name, sim::peers::debugger_behaviour b) {
        return kind_of<sim::peers::model_debugger>(
            name, [b](const sim::session_plan& p) { return std::make_unique<sim::peers::model_debugger>(b, p); });
    };
    return {
        model_of("WinDbg", sim::peers::windbg()),
        model_of("WinDbgResetsOff", sim::peers::windbg_resets_off()),
        [&] {
            auto k = model_of("Pykdclient", sim::peers::pykdclient());
            k.recovers_from_faults = false;
            return k;
        }(),
        model_of("Radare2", sim::peers::radare2()),
        kind_of<sim::kdcom_debugger>("KdcomDebugger",
                                     [](const sim::session_plan& p) { return std::make_unique<sim::kdcom_debugger>(p); }),
    };
}

class BridgeAgainstDebugger : public ::testing::TestWithParam<std::tuple<std::size_t, bool>> {};

TEST_P(BridgeAgainstDebugger, TwoAttachesEachReadExactlyTheImage) {
    const auto [index, faulty] = GetParam();
    const debugger_kind kind = debugger_kinds()[index];
    running_bridge rig({}, transport_kind::unix_socket, 0, 0, /*debugger_session=*/false);
    if (faulty)
        rig.debugger_links->debugger = std::make_unique<net::faulty_link>(
            std::move(rig.debugger_links->debugger),
            net::link_faults{.loss = 0.01, .corrupt = 0.01, .duplicate = 0.01, .garbage = 0.01, .seed = 7});
    char error[256] = {};
    kdcom_guest* g = kdcom_guest_attach(rig.name.c_str(), error, sizeof error);
    ASSERT_NE(g, nullptr) << error;
    guest::memory_image memory(image_size), reference(image_size);
    guest::fake_kernel kernel(g, memory, {.kern_base = kern_base, .receive_timeout = 100ms});
    std::atomic<bool> stop{false};
    std::thread guest_thread([&] { kernel.run(stop); });

    for (int attach = 0; attach < 2; ++attach) {
        SCOPED_TRACE(std::string(kind.name) + " attach " + std::to_string(attach + 1));
        // The kernel runs when each debugger attaches: it breaks in first.
        const sim::session_plan plan{.reads = 200,
                                     .starts_running = true,
                                     .break_in_and_continue = attach == 0,
                                     .seed = static_cast<std::uint64_t>(attach + 1),
                                     .memory = [&](std::uint64_t a) { return reference.pristine(a - kern_base); }};
        std::unique_ptr<sim::node> debugger = kind.make(plan);
        std::promise<std::unique_ptr<net::byte_stream>> opened;
        rig.on_io([&] {
            rig.debugger_links->debugger->async_open([&](std::error_code ec, std::unique_ptr<net::byte_stream> s) {
                opened.set_value(ec ? nullptr : std::move(s));
            });
        });
        auto stream = opened.get_future().get();
        ASSERT_TRUE(stream);
        std::shared_ptr<node_runner> runner;
        rig.on_io([&] {
            runner = std::make_shared<node_runner>(rig.io.get_executor(), *debugger);
            runner->attach(std::move(stream));
            runner->start();
        });
        bool done = false, failed = false;
        std::string failure;
        const auto deadline = std::chrono::steady_clock::now() + 60s;
        while (!done && !failed && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(20ms);
            rig.on_io([&] {
                const auto& s = kind.session(*debugger);
                done = s.done();
                failed = s.failed();
                failure = s.failure();
            });
        }
        rig.on_io([&] { runner->close(); });
        rig.on_io([] {});  // the runner's cancelled handlers run before the debugger goes
        EXPECT_TRUE(done) << (failed ? failure : "did not finish within 60 s");
        if (!done) break;
    }
    stop = true;
    guest_thread.join();
    kdcom_guest_detach(g);
    // Two break-ins by the first debugger, one by the second; line noise may carry a break-in byte
    // of its own, which the kernel honours as Windows would.
    if (faulty) EXPECT_GE(kernel.stats().breaks, 3u);
    else EXPECT_EQ(kernel.stats().breaks, 3u) << "two break-ins by the first debugger, one by the second";
}

// Every debugger clean, and under faults those whose design recovers from them.
std::vector<std::tuple<std::size_t, bool>> bridge_cases() {
    std::vector<std::tuple<std::size_t, bool>> cases;
    const auto kinds = debugger_kinds();
    for (std::size_t i = 0; i < kinds.size(); ++i) {
        cases.emplace_back(i, false);
        if (kinds[i].recovers_from_faults) cases.emplace_back(i, true);
    }
    return cases;
}

INSTANTIATE_TEST_SUITE_P(Models, BridgeAgainstDebugger, ::testing::ValuesIn(bridge_cases()),
                         [](const ::testing::TestParamInfo<std::tuple<std::size_t, bool>>& param) {
                             return std::string(debugger_kinds()[std::get<0>(param.param)].name) +
                                    (std::get<1>(param.param) ? "_faults" : "_clean");
                         });

}  // namespace
