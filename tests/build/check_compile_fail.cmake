# Compiles SOURCE as is (must succeed), then once per name in FAILING_DEFINES with that macro
# defined (each must fail).
set(flags -std=c++20 -fsyntax-only -I ${INCLUDE_DIR})  # Boost: the compiler's default path
execute_process(COMMAND ${CXX} ${flags} ${SOURCE} RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} does not compile as is:\n${err}")
endif()
foreach(define IN LISTS FAILING_DEFINES)
  execute_process(COMMAND ${CXX} ${flags} -D${define} ${SOURCE} RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(rc EQUAL 0)
    message(FATAL_ERROR "${SOURCE} compiles with ${define}: what it guards against is allowed again")
  endif()
endforeach()
message(STATUS "${SOURCE}: each of ${FAILING_DEFINES} is rejected at compile time")
