# Fails if any core header pulls in a header other than the standard library's, the C library's,
# Boost's or kdcom's own. Run by ctest: cmake -DCXX=... -DINCLUDE_DIR=... -DHEADERS=a;b -P this.
foreach(var CXX INCLUDE_DIR HEADERS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_core_includes: ${var} not set")
  endif()
endforeach()

set(failures "")
foreach(header IN LISTS HEADERS)
  # -MM would hide system headers, so use -M and inspect every path.
  execute_process(
    COMMAND ${CXX} -std=c++20 -x c++ -M -I ${INCLUDE_DIR} ${INCLUDE_DIR}/${header}
    RESULT_VARIABLE rc OUTPUT_VARIABLE deps ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(APPEND failures "${header}: does not preprocess on its own:\n${err}\n")
    continue()
  endif()
  string(REPLACE "\\\n" " " deps "${deps}")
  string(REGEX REPLACE "^[^:]*:" "" deps "${deps}")
  string(REGEX REPLACE "[ \t\r\n]+" ";" deps "${deps}")
  foreach(dep IN LISTS deps)
    if(dep STREQUAL "")
      continue()
    endif()
    if(dep MATCHES "(^|/)(asio|fmt|CLI|nlohmann|gtest|gmock|benchmark)(/|\\.h)")
      string(APPEND failures "${header}: includes ${dep}\n")
    elseif(dep MATCHES "^${INCLUDE_DIR}/kdcom/" OR dep MATCHES "/boost/"
           OR dep MATCHES "/c\\+\\+/" OR dep MATCHES "^/usr/(local/)?include/"
           OR dep MATCHES "^/usr/lib/(gcc|llvm)")
      # kdcom itself, Boost, the C++ and C libraries, compiler builtins: allowed.
    else()
      string(APPEND failures "${header}: includes ${dep}, which is not allowed in the core\n")
    endif()
  endforeach()
endforeach()

list(LENGTH HEADERS count)
if(failures)
  message(FATAL_ERROR "Core header boundary violated:\n${failures}")
endif()
message(STATUS "${count} core headers include only the standard library, Boost and kdcom")
