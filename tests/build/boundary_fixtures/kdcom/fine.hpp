// Not a kdcom header: a core header as it should be, for the boundary check's self-test.
#pragma once
#include <boost/endian/conversion.hpp>
#include <cstdint>
#include <span>
#include "wire.hpp"  // another core header of this fixture tree
