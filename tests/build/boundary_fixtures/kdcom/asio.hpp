// Not a kdcom header: a core header gone wrong, for the boundary check's self-test.
#pragma once
#include <asio/io_context.hpp>
