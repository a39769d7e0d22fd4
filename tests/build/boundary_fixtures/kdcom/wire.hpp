// Not a kdcom header: a core header as it should be, for the boundary check's self-test.
#pragma once
#include <cstddef>
