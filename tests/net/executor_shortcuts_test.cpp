// The shortcuts past the type-erased executor must do what asio::dispatch and asio::post do: run
// inline only where dispatch would, never inline for a post, and leave any other executor (a
// strand) in charge of where and when the function runs.
#include "kdcom/net/detail/executor_shortcuts.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include <asio/strand.hpp>

namespace {

using kdcom::net::detail::dispatch_to;
using kdcom::net::detail::post_to;
using kdcom::net::detail::runs_in_this_thread;

TEST(ExecutorShortcuts, ATypeErasedIoContextExecutorIsRecognisedOnlyOnItsOwnThread) {
    asio::io_context io, other;
    const asio::any_io_executor ex = io.get_executor();
    EXPECT_FALSE(runs_in_this_thread(ex)) << "nobody runs the io_context yet";
    bool inside = false, inside_other = true, strand_recognised = true;
    const asio::any_io_executor strand = asio::make_strand(io);
    asio::post(io, [&] {
        inside = runs_in_this_thread(ex);
        inside_other = runs_in_this_thread(asio::any_io_executor(other.get_executor()));
        strand_recognised = runs_in_this_thread(strand);
    });
    io.run();
    EXPECT_TRUE(inside);
    EXPECT_FALSE(inside_other);
    EXPECT_FALSE(strand_recognised) << "a strand cannot be told apart from here: Asio decides";
}

// A handler's work guard holds the executor with outstanding work tracked: a type of its own,
// which must still count as the io_context's (or every completion would take the slow way).
TEST(ExecutorShortcuts, AnExecutorThatTracksWorkIsTheIoContextsToo) {
    asio::io_context io;
    bool inside = false, inline_run = false, returned = false;
    asio::post(io, [&] {
        // Made in here: while it lives, io.run() has work and would not return.
        const asio::any_io_executor tracked = asio::prefer(io.get_executor(), asio::execution::outstanding_work.tracked);
        inside = runs_in_this_thread(tracked);
        dispatch_to(tracked, [&] { inline_run = !returned; });
        returned = true;
    });
    io.run();
    EXPECT_TRUE(inside);
    EXPECT_TRUE(inline_run);
}

TEST(ExecutorShortcuts, DispatchRunsInlineOnTheIoContextsThreadAndWaitsForItElsewhere) {
    asio::io_context io;
    const asio::any_io_executor ex = io.get_executor();
    bool ran = false;
    dispatch_to(ex, [&] { ran = true; });
    EXPECT_FALSE(ran) << "from outside run(), it waits for the io_context";
    io.run();
    EXPECT_TRUE(ran);

    io.restart();
    bool inline_run = false, returned = false;
    asio::post(io, [&] {
        dispatch_to(ex, [&] { inline_run = !returned; });
        returned = true;
    });
    io.run();
    EXPECT_TRUE(inline_run) << "on the io_context's thread it runs before dispatch_to returns";
}

TEST(ExecutorShortcuts, DispatchToAStrandRunsInsideTheStrand) {
    asio::io_context io;
    const auto strand = asio::make_strand(io);
    const asio::any_io_executor ex = strand;
    bool ran = false, in_strand = false;
    asio::post(io, [&] {
        dispatch_to(ex, [&] {
            ran = true;
            in_strand = strand.running_in_this_thread();
        });
    });
    io.run();
    EXPECT_TRUE(ran);
    EXPECT_TRUE(in_strand);
}

TEST(ExecutorShortcuts, PostNeverRunsInlineAndKeepsOrderWithAsioPost) {
    asio::io_context io;
    const asio::any_io_executor ex = io.get_executor();
    std::vector<int> order;
    asio::post(io, [&] {
        post_to(ex, [&] { order.push_back(1); });
        asio::post(ex, [&] { order.push_back(2); });
        post_to(ex, [&] { order.push_back(3); });
        order.push_back(0);
    });
    io.run();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

TEST(ExecutorShortcuts, PostToAStrandRunsInsideTheStrandAndToAnotherIoContextOnIt) {
    asio::io_context io, other;
    const auto strand = asio::make_strand(io);
    bool in_strand = false, ran_elsewhere = false, on_other = false;
    post_to(asio::any_io_executor(strand), [&] { in_strand = strand.running_in_this_thread(); });
    post_to(asio::any_io_executor(other.get_executor()), [&] {
        ran_elsewhere = true;
        on_other = other.get_executor().running_in_this_thread();
    });
    io.run();
    EXPECT_TRUE(in_strand);
    EXPECT_FALSE(ran_elsewhere) << "it waits for the io_context it was posted to";
    std::thread runner([&] { other.run(); });
    runner.join();
    EXPECT_TRUE(ran_elsewhere);
    EXPECT_TRUE(on_other);
}

}  // namespace
