// The replacement global operator new behind allocation_counter.hpp.
#include "allocation_counter.hpp"

#include <cstdlib>
#include <new>

std::atomic<std::size_t> kdcom::bench::allocations{0};

void* operator new(std::size_t size) {
    kdcom::bench::allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
