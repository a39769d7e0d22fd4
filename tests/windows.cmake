# The Windows build of the tests (cross-compiled with mingw-w64, run under Wine through
# CMAKE_CROSSCOMPILING_EMULATOR): the protocol core's tests and the Windows transports'.
# GoogleTest is built from the sources Debian's googletest package installs.
set(gtest_force_shared_crt ON CACHE BOOL "" FORCE)
add_subdirectory(/usr/src/googletest ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL)

function(kdcom_add_windows_test name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE kdcom::kdcom kdcom_warnings gtest gtest_main)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_compile_definitions(${name} PRIVATE KDCOM_TEST_VECTORS_DIR="${CMAKE_CURRENT_SOURCE_DIR}/vectors"
                                            KDCOM_EXAMPLES_DIR="${PROJECT_SOURCE_DIR}/examples")
  # One ctest entry per executable: listing the cases first would start Wine once more each.
  add_test(NAME ${name} COMMAND ${name})
endfunction()

kdcom_add_core_tests(kdcom_add_windows_test)
kdcom_add_windows_test(windows_pipe_test net/windows_pipe_test.cpp)
target_link_libraries(windows_pipe_test PRIVATE kdcom::transports)
