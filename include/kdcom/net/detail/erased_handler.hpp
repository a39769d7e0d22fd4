// A move-only, type-erased Asio completion handler for one signature. Asio 1.22 (Debian 12) has no
// any_completion_handler; this keeps what matters from it: the handler may be move-only (as
// use_awaitable's is), it runs on its own associated executor, and that executor is kept busy
// (a work guard) until it has run. post() always defers the call; complete(true, ...) runs the
// handler at once when the caller is already on the handler's executor (for completions that do
// not happen inside the call that started the operation, as Asio's own operations do).
#pragma once

#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include <asio/associated_executor.hpp>
#include <asio/executor_work_guard.hpp>

#include "kdcom/net/detail/executor_shortcuts.hpp"

namespace kdcom::net::detail {

template <class Signature>
class erased_handler;

template <class... Args>
class erased_handler<void(Args...)> {
public:
    erased_handler() = default;

    // Takes `handler`, whose associated executor defaults to `fallback`.
    template <class Handler, class Executor>
    erased_handler(Handler&& handler, const Executor& fallback)
        : impl_(std::make_unique<model<std::decay_t<Handler>, Executor>>(std::forward<Handler>(handler), fallback)) {}

    explicit operator bool() const noexcept { return impl_ != nullptr; }

    // Posts the handler with `args` to its executor. The erased_handler is empty afterwards.
    void post(Args... args) { complete(false, std::move(args)...); }

    // With `may_run_here`, runs the handler with `args` now if this thread is in its executor
    // (asio::dispatch); otherwise, or without it, posts it. The erased_handler is empty afterwards.
    void complete(bool may_run_here, Args... args) {
        auto impl = std::move(impl_);
        impl->complete(may_run_here, std::move(args)...);
    }

private:
    struct concept_ {
        virtual ~concept_() = default;
        virtual void complete(bool may_run_here, Args... args) = 0;
    };

    template <class Handler, class Fallback>
    struct model final : concept_ {
        using executor_type = asio::associated_executor_t<Handler, Fallback>;
        model(Handler h, const Fallback& fallback)
            : handler(std::move(h)), work(asio::get_associated_executor(handler, fallback)) {}
        void complete(bool may_run_here, Args... args) override {
            auto executor = work.get_executor();
            auto call = [h = std::move(handler), w = std::move(work), a = std::make_tuple(std::move(args)...)]() mutable {
                std::apply(std::move(h), std::move(a));
            };
            if (may_run_here) dispatch_to(executor, std::move(call));
            else post_to(executor, std::move(call));
        }
        Handler handler;
        asio::executor_work_guard<executor_type> work;
    };

    std::unique_ptr<concept_> impl_;
};

}  // namespace kdcom::net::detail
