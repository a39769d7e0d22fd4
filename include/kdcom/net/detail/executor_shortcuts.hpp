// Shortcuts past Asio's type-erased executor for the common case of an any_io_executor that holds
// a plain io_context executor. Through the type-erased path, asio::post and asio::dispatch wrap
// the function in one more type-erased function object (an allocation and indirect calls) on
// the way to the same queue, or to the same inline call. Every other executor (a strand, say)
// goes through Asio as before, so what runs where, and in what order, does not change.
#pragma once

#include <type_traits>
#include <typeinfo>
#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/execution/outstanding_work.hpp>

namespace kdcom::net::detail {

using io_executor = asio::io_context::executor_type;
// What an io_context's executor becomes inside a work guard (and so in a handler's work).
using tracked_io_executor =
    std::decay_t<decltype(asio::prefer(std::declval<io_executor>(), asio::execution::outstanding_work.tracked))>;

// The executor of type `Target` that a type-erased executor holds, or null. Asio 1.22's
// any_executor::target<T>() casts without looking at what it holds (a strand would come back as
// its inner io_context executor), so the type is checked here first. The type_info objects are
// compared by address: equal addresses are the same type, and a type whose type_info was
// duplicated (across shared libraries) only misses the shortcut, where operator== would compare
// the names character by character on every call with an executor of another type. Without
// RTTI: always null, and every call goes through Asio.
template <class Target>
const Target* held(const asio::any_io_executor& executor) noexcept {
#if !defined(ASIO_NO_TYPEID)
    if (&executor.target_type() == &typeid(Target)) return executor.template target<Target>();
#else
    (void)executor;
#endif
    return nullptr;
}

// Whether `executor` is an io_context's (plain or type-erased) and this thread is running it;
// false for anything else (a strand, say), for which Asio cannot say so.
template <class Executor>
bool runs_in_this_thread(const Executor& executor) {
    if constexpr (std::is_same_v<Executor, io_executor> || std::is_same_v<Executor, tracked_io_executor>) {
        return executor.running_in_this_thread();
    } else if constexpr (std::is_same_v<Executor, asio::any_io_executor>) {
        if (const auto* io = held<io_executor>(executor)) return io->running_in_this_thread();
        if (const auto* io = held<tracked_io_executor>(executor)) return io->running_in_this_thread();
        return false;
    } else {
        return false;
    }
}

// asio::dispatch(executor, f): `f` is called before this returns when this thread runs the
// io_context behind `executor` (what dispatch does there too), and otherwise given to Asio.
template <class Executor, class Function>
void dispatch_to(const Executor& executor, Function&& f) {
    if (runs_in_this_thread(executor))
        std::forward<Function>(f)();
    else
        asio::dispatch(executor, std::forward<Function>(f));
}

// asio::post(executor, f): never called inside this call; straight into the io_context's queue
// when a type-erased executor holds one.
template <class Executor, class Function>
void post_to(const Executor& executor, Function&& f) {
    if constexpr (std::is_same_v<Executor, asio::any_io_executor>) {
        if (const auto* io = held<io_executor>(executor)) return asio::post(*io, std::forward<Function>(f));
        if (const auto* io = held<tracked_io_executor>(executor)) return asio::post(*io, std::forward<Function>(f));
    }
    asio::post(executor, std::forward<Function>(f));
}

}  // namespace kdcom::net::detail
