// kd::client against the fake kernel behind the bridge (every operation, over each kind of link),
// and against scripted targets that misbehave: one that never answers, one that answers twice.
#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>

#include "kdcom/guest/memory_image.hpp"
#include "kdcom/net/kd_client.hpp"
#include "kdcom/net/open_link.hpp"
#include "support/kernel_thread.hpp"
#include "support/net_pair.hpp"
#include "support/running_bridge.hpp"

namespace {
using namespace kdcom;
using namespace kdcom::test;
using namespace std::chrono_literals;
using kd::memory_space;

constexpr std::uint64_t kern_base = 0xfffff80000000000u;

// A client on the debugger's end of a running bridge, the fake kernel behind it.
struct client_rig {
    running_bridge rig;
    kernel_thread kernel;
    std::shared_ptr<kd::client> client;
    std::mutex mutex;
    std::string prints;

    explicit client_rig(transport_kind kind, kd::client_options options = {})
        : rig({}, kind, 0, 0, /*debugger_session=*/false), kernel(rig.name, "fake kernel booting\n", 4 << 20) {
        auto s = net::session::create(std::move(rig.debugger_links->debugger), {.role = role::debugger});
        kd::client_handlers handlers;
        handlers.print = [this](std::string_view t) {
            std::lock_guard lock(mutex);
            prints += t;
        };
        client = kd::client::create(s, options, std::move(handlers));
        rig.on_io([&] { client->start(); });
    }
    ~client_rig() {
        kernel.finish();
        rig.on_io([&] { client->close(); });
    }
    std::string printed() {
        std::lock_guard lock(mutex);
        return prints;
    }
};

std::vector<std::uint8_t> image_bytes(const guest::memory_image& image, std::uint64_t at, std::size_t n) {
    std::vector<std::uint8_t> out(n);
    image.read(at, out);
    return out;
}

class KdClient : public ::testing::TestWithParam<transport_kind> {};

TEST_P(KdClient, EveryOperationAgainstTheFakeKernel) {
    client_rig r(GetParam());
    auto& c = *r.client;
    const guest::memory_image reference(4 << 20);
    std::error_code ec;

    const auto stop = c.break_in(ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(stop.header.exception.code, kd::status::breakpoint);
    EXPECT_EQ(stop.header.program_counter, kern_base + 0x1000);

    const auto version = c.get_version(ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(version.machine_type, 0x8664);
    EXPECT_EQ(version.kern_base, kern_base);

    // Reads of any length, split into pieces: virtual and physical name the same image here.
    const auto physical = c.read_memory(memory_space::physical_memory, 0x1234, 10000, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(physical, image_bytes(reference, 0x1234, 10000));
    std::vector<std::uint64_t> offsets;
    const auto done = c.read_memory(memory_space::virtual_memory, kern_base + 0x5000, 9000,
                                    [&](std::uint64_t offset, std::span<const std::uint8_t>) { offsets.push_back(offset); }, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(done, 9000u);
    EXPECT_EQ(offsets, (std::vector<std::uint64_t>{0, 3944, 7888})) << "pieces of the most a packet carries, in order";

    // A read past the end of memory: the bytes that exist, and why the rest did not come.
    const auto tail = c.read_memory(memory_space::physical_memory, (4 << 20) - 100, 300, ec);
    EXPECT_EQ(ec, kd::client_errc::short_transfer);
    EXPECT_EQ(tail, image_bytes(reference, (4 << 20) - 100, 100));

    const std::vector<std::uint8_t> pattern(5000, 0xA5);
    EXPECT_EQ(c.write_memory(memory_space::virtual_memory, kern_base + 0x8000, pattern, ec), 5000u);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(c.read_memory(memory_space::physical_memory, 0x8000, 5000, ec), pattern);

    const auto kpcr = c.read_control_space(0, 0, 8, ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_EQ(kpcr.size(), 8u);
    EXPECT_EQ(boost::endian::load_little_u64(kpcr.data()), kern_base + 0x10000);
    c.read_control_space(0, 77, 8, ec);
    EXPECT_EQ(ec.category(), kd::ntstatus_category()) << "a refusal is the target's status";
    EXPECT_EQ(static_cast<std::uint32_t>(ec.value()), kd::status::unsuccessful);

    auto context = c.get_context(ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(context.get(kd::amd64::rip), kern_base + 0x1000);
    EXPECT_EQ(context.get(kd::amd64::seg_cs), 0x10u);
    context.set(kd::amd64::rax, 0x1122334455667788u);
    c.set_context(context, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(c.get_context(ec).get(kd::amd64::rax), 0x1122334455667788u);

    EXPECT_EQ(c.read_msr(0xC0000082, ec), kern_base + 0x3000) << "IA32_LSTAR";
    c.write_msr(0xC0000084, 0x4700, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(c.read_msr(0xC0000084, ec), 0x4700u);
    c.read_msr(0x12345, ec);
    EXPECT_EQ(static_cast<std::uint32_t>(ec.value()), kd::status::no_such_device);

    c.write_io(0x80, 2, 0xBEEF, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(c.read_io(0x80, 2, ec), 0xBEEFu);
    EXPECT_EQ(c.read_io(0x81, 1, ec), 0xBEu);
    c.read_io(0x80, 3, ec);
    EXPECT_EQ(static_cast<std::uint32_t>(ec.value()), kd::status::invalid_parameter);

    // A breakpoint is an int3 in memory until restored.
    const std::uint64_t bp = kern_base + 0x4000;
    const auto original = c.read_memory(memory_space::virtual_memory, bp, 1, ec);
    const auto handle = c.write_breakpoint(bp, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(c.read_memory(memory_space::virtual_memory, bp, 1, ec), std::vector<std::uint8_t>{0xCC});

    // A trace step: the target runs one instruction and stops again.
    c.continue_running(kd::status::dbg_continue, /*trace=*/true, ec);
    ASSERT_FALSE(ec) << ec.message();
    auto step = c.wait_state_change(5s, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(step.header.exception.code, kd::status::single_step);
    EXPECT_EQ(step.header.program_counter, kern_base + 0x1001);

    // Running on, it hits the breakpoint.
    c.continue_running(kd::status::dbg_continue, false, ec);
    ASSERT_FALSE(ec) << ec.message();
    const auto hit = c.wait_state_change(5s, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(hit.header.exception.code, kd::status::breakpoint);
    EXPECT_EQ(hit.header.program_counter, bp);
    c.restore_breakpoint(handle, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(c.read_memory(memory_space::virtual_memory, bp, 1, ec), original);
    c.restore_breakpoint(handle, ec);
    EXPECT_EQ(ec.category(), kd::ntstatus_category()) << "a handle already restored";

    // While it runs, requests fail at once and nothing is sent.
    c.continue_running(kd::status::dbg_continue, false, ec);
    ASSERT_FALSE(ec) << ec.message();
    c.get_version(ec);
    EXPECT_EQ(ec, kd::client_errc::target_running);

    ASSERT_FALSE(c.break_in(ec).header.exception.code == 0) << ec.message();
    c.reboot(ec);
    ASSERT_FALSE(ec) << ec.message();
    for (int i = 0; i < 100 && r.printed().find("rebooted") == std::string::npos; ++i) std::this_thread::sleep_for(20ms);
    EXPECT_NE(r.printed().find("fake kernel booting"), std::string::npos);
    EXPECT_NE(r.printed().find("fake kernel: rebooted"), std::string::npos);
    EXPECT_EQ(c.break_in(ec).header.exception.code, kd::status::breakpoint) << ec.message();

    // A resynchronisation on demand: the link's ids restart, and requests go on.
    const auto before = c.stats();
    EXPECT_GT(before.packets_sent, 30u);
    c.resynchronise();
    for (int i = 0; i < 100 && c.stats().resets_sent == before.resets_sent; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_GT(c.stats().resets_sent, before.resets_sent);
    EXPECT_EQ(c.get_version(ec).machine_type, 0x8664) << ec.message();
    EXPECT_EQ(c.stray_replies(), 0u);
}

TEST_P(KdClient, AsyncOperationsTakeAnyCompletionToken) {
    client_rig r(GetParam());
    auto stop = r.client->async_break_in(asio::use_future);
    ASSERT_EQ(stop.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(stop.get().header.exception.code, kd::status::breakpoint);
    // Queued back to back: they run one after another, in order.
    auto version = r.client->async_get_version(asio::use_future);
    auto bytes = r.client->async_read_memory(memory_space::physical_memory, 0, 100, asio::use_future);
    EXPECT_EQ(version.get().machine_type, 0x8664);
    EXPECT_EQ(bytes.get(), image_bytes(guest::memory_image(4 << 20), 0, 100));
}

INSTANTIATE_TEST_SUITE_P(DebuggerLinks, KdClient,
                         ::testing::Values(transport_kind::tcp, transport_kind::unix_socket, transport_kind::fifo,
                                           transport_kind::serial_pty),
                         [](const ::testing::TestParamInfo<transport_kind>& test) { return to_string(test.param); });

// A scripted target on a session of its own: it reports a stop, then does what `on_request` says
// with each request.
struct scripted_target {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    std::unique_ptr<net::link_pair> links = make_links(io, transport_kind::memory);
    std::shared_ptr<net::session> target = net::session::create(std::move(links->target), {.role = role::target});
    std::shared_ptr<kd::client> client;
    std::function<void(const net::received_packet&)> on_request;
    std::atomic<int> requests{0};
    std::thread runner;

    explicit scripted_target(kd::client_options options, kd::client_handlers handlers = {}) {
        auto s = net::session::create(std::move(links->debugger), {.role = role::debugger});
        client = kd::client::create(s, options, std::move(handlers));
        target->start();
        client->start();
        serve();
        runner = std::thread([this] { io.run(); });
    }
    ~scripted_target() {
        asio::post(io, [this] {
            client->close();
            target->close();
        });
        work.reset();
        runner.join();
    }
    void report_stop() {
        kd::state_change_header h;
        h.exception.code = kd::status::breakpoint;
        std::uint8_t body[kd::state_change_header_size];
        kd::encode_state_change(h, body);
        target->async_send(wire::packet_type::state_change64, body, {}, [](std::error_code) {});
    }
    void reply(const kd::manipulate_header& h, std::span<const std::uint8_t> data = {}) {
        std::uint8_t header[kd::manipulate_header_size];
        kd::encode_manipulate(h, header);
        target->async_send(wire::packet_type::state_manipulate, header, data, [](std::error_code) {});
    }

private:
    void serve() {
        target->async_receive([this](std::error_code ec, net::received_packet p) {
            if (ec) return;
            ++requests;
            if (on_request) on_request(p);
            serve();
        });
    }
};

TEST(KdClientAgainstScriptedTargets, ARequestNobodyAnswersFailsAfterItsResyncs) {
    scripted_target t({.exchange = {.attempt_timeout = 100ms, .resyncs = 2}});
    asio::post(t.io, [&] { t.report_stop(); });
    std::error_code ec;
    t.client->wait_state_change(5s, ec);
    ASSERT_FALSE(ec) << ec.message();
    const auto started = std::chrono::steady_clock::now();
    t.client->get_version(ec);
    EXPECT_EQ(ec, kd::client_errc::no_reply);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 3s) << "three attempts of 100 ms, with their handshakes";
    EXPECT_EQ(t.requests.load(), 3) << "the request, then once after each resynchronisation";
}

TEST(KdClientAgainstScriptedTargets, AReplySentTwiceIsNotTakenForTheNextOnesAnswer) {
    scripted_target t({});
    std::uint8_t fill = 0;
    t.on_request = [&](const net::received_packet& p) {
        auto h = *kd::decode_manipulate(p.body);
        h.memory.actual_bytes = h.memory.transfer_count;
        const std::vector<std::uint8_t> data(h.memory.transfer_count, ++fill);
        t.reply(h, data);
        t.reply(h, data);  // as Xen's kdd does with a request it saw twice
    };
    asio::post(t.io, [&] { t.report_stop(); });
    std::error_code ec;
    t.client->wait_state_change(5s, ec);
    const auto first = t.client->read_memory(memory_space::physical_memory, 0x1000, 16, ec);
    const auto second = t.client->read_memory(memory_space::physical_memory, 0x2000, 16, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(first, std::vector<std::uint8_t>(16, 1));
    EXPECT_EQ(second, std::vector<std::uint8_t>(16, 2));
    std::promise<std::uint64_t> strays;
    asio::post(t.io, [&] { strays.set_value(t.client->stray_replies()); });
    EXPECT_GE(strays.get_future().get(), 1u);
}

TEST(KdClientAgainstScriptedTargets, ATargetsPromptAndFileRequestsAreAnswered) {
    kd::client_handlers handlers;
    handlers.prompt = [](std::string_view prompt) { return std::string(prompt == "Break, Ignore? " ? "i" : "?"); };
    std::atomic<std::size_t> file_name_bytes{0};
    handlers.file_request = [&](const kd::file_io_header& h, std::span<const std::uint8_t> name) {
        if (h.api == kd::file_io_api::create_file) file_name_bytes = name.size();
    };
    scripted_target t({}, std::move(handlers));
    std::promise<std::vector<net::received_packet>> answers;
    std::vector<net::received_packet> got;
    t.on_request = [&](const net::received_packet& p) {
        got.push_back(p);
        if (got.size() == 2) answers.set_value(got);
    };
    asio::post(t.io, [&] {
        // DbgPrompt, then a .kdfiles request for a driver.
        const std::string prompt = "Break, Ignore? ";
        kd::debug_io_header d;
        d.api = kd::debug_io_api::get_string;
        d.length_of_string = static_cast<std::uint32_t>(prompt.size());
        std::uint8_t dh[kd::debug_io_header_size];
        kd::encode_debug_io(d, dh);
        t.target->async_send(wire::packet_type::debug_io, dh,
                             {reinterpret_cast<const std::uint8_t*>(prompt.data()), prompt.size()}, [](std::error_code) {});
        kd::file_io_header f;
        std::uint8_t fh[kd::file_io_header_size];
        kd::encode_file_io(f, fh);
        static constexpr std::uint8_t name[] = {'a', 0, '.', 0, 's', 0, 'y', 0, 's', 0};  // "a.sys", UTF-16LE
        t.target->async_send(wire::packet_type::file_io, fh, name, [](std::error_code) {});
    });
    auto future = answers.get_future();
    ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
    const auto a = future.get();
    ASSERT_EQ(a[0].type, wire::packet_type::debug_io);
    EXPECT_EQ(kd::decode_debug_io(a[0].body)->length_of_string_read, 1u);
    EXPECT_EQ(a[0].body.back(), 'i') << "the prompt handler's answer";
    ASSERT_EQ(a[1].type, wire::packet_type::file_io);
    EXPECT_EQ(kd::decode_file_io(a[1].body)->status, kd::status::no_such_file) << "no replacement files served";
    EXPECT_EQ(file_name_bytes.load(), 10u) << "the file_request handler was told, with the name";
}

TEST(KdClientAgainstScriptedTargets, WhatIsAskedAfterTheSessionClosedFailsAtOnce) {
    // A target that cannot be reached, and no reconnecting: the session closes at its first try.
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    kdcom::failure error;
    auto address = transport::parse_address("unix:///nonexistent/kdcom-client-test.sock", error);
    ASSERT_TRUE(address) << error.message();
    auto link = net::open_link(io.get_executor(), *address, role::debugger, error);
    ASSERT_TRUE(link) << error.message();
    auto session = net::session::create(std::move(link), {.role = role::debugger}, {.reconnect = false});
    std::promise<void> closed;
    kd::client_handlers handlers;
    handlers.notice = [&](const net::session_notice& n) {
        if (n.kind == net::session_notice::what::closed) closed.set_value();
    };
    auto client = kd::client::create(session, {}, std::move(handlers));
    asio::post(io, [&] { client->start(); });
    std::thread runner([&] { io.run(); });
    ASSERT_EQ(closed.get_future().wait_for(5s), std::future_status::ready);
    // Asked only now, after the close: each fails with `closed`, none waits out its time.
    const auto started = std::chrono::steady_clock::now();
    std::error_code ec;
    client->wait_state_change(10s, ec);
    EXPECT_EQ(ec, net::session_errc::closed);
    client->break_in(ec);
    EXPECT_EQ(ec, net::session_errc::closed);
    client->get_version(ec);
    EXPECT_EQ(ec, net::session_errc::closed);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    work.reset();
    runner.join();
}

TEST(KdClientNames, NoticesHaveNames) {
    EXPECT_EQ(net::notice_name(net::session_notice::what::stream_opened), "stream opened");
    EXPECT_EQ(net::notice_name(net::session_notice::what::link_failed), "link failed");
    EXPECT_EQ(kd::make_error_code(kd::client_errc::target_running).message(), "the target is running (break in first)");
}

TEST(KdClientAgainstScriptedTargets, BlockingFormsRefuseToRunOnTheSessionsOwnThread) {
    scripted_target t({});
    std::promise<std::error_code> result;
    asio::post(t.io, [&] {
        std::error_code ec;
        t.client->get_version(ec);
        result.set_value(ec);
    });
    EXPECT_EQ(result.get_future().get(), std::errc::resource_deadlock_would_occur);
}

}  // namespace
