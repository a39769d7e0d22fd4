// How many seeds a property test runs: `fallback`, unless the environment variable `name` says
// otherwise (a developer chasing a failure runs more; a slow machine fewer).
#pragma once

#include <cstdint>
#include <cstdlib>

namespace kdcom::test {

inline std::uint64_t seed_count(const char* name, std::uint64_t fallback) {
    const char* env = std::getenv(name);
    return env ? std::strtoull(env, nullptr, 10) : fallback;
}

}  // namespace kdcom::test
