// Counts heap allocations in a benchmark binary: link allocation_counter.cpp, which replaces the
// global operator new, and read the count before and after the code under test.
#pragma once

#include <atomic>
#include <cstddef>

namespace kdcom::bench {
extern std::atomic<std::size_t> allocations;
}  // namespace kdcom::bench
