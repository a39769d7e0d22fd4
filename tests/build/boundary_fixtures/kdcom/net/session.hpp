// Not a kdcom header: stands for the Asio binding in the boundary check's self-test.
#pragma once
