// Calls a function when it goes out of scope, however that happens (a return, an exception): for
// the teardown a tool must do on every way out.
#pragma once

namespace kdcom::tools {

template <class F>
struct at_scope_exit {
    F f;
    ~at_scope_exit() { f(); }
};
template <class F>
at_scope_exit(F) -> at_scope_exit<F>;

}  // namespace kdcom::tools
