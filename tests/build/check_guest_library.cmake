# Fails if the guest library (kdcom/guest/kd_guest.h, the reference for a guest driver) depends on
# Asio or on a transport: neither its link libraries nor anything its sources include may be the
# Asio binding. Run by ctest:
#   cmake -DCXX=... -DINCLUDE_DIRS=a;b -DSOURCES=x.cpp;y.cpp -DLINKS=lib;lib [-DFORBID=regex] -P this
# FORBID: a further pattern no included file may match.
cmake_minimum_required(VERSION 3.20)
foreach(var CXX INCLUDE_DIRS SOURCES LINKS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_guest_library: ${var} not set")
  endif()
endforeach()

set(failures "")
foreach(link IN LISTS LINKS)
  if(link MATCHES "transport|kdcom_net|kdcom::net|asio")
    string(APPEND failures "links ${link}\n")
  endif()
endforeach()

set(include_flags "")
foreach(dir IN LISTS INCLUDE_DIRS)
  list(APPEND include_flags -I ${dir})
endforeach()
foreach(source IN LISTS SOURCES)
  execute_process(COMMAND ${CXX} -std=c++20 -M ${include_flags} ${source}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE deps ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(APPEND failures "${source}: does not preprocess:\n${err}\n")
    continue()
  endif()
  string(REPLACE "\\\n" " " deps "${deps}")
  string(REGEX REPLACE "^[^:]*:" "" deps "${deps}")
  string(REGEX REPLACE "[ \t\r\n]+" ";" deps "${deps}")
  foreach(dep IN LISTS deps)
    if(dep MATCHES "/asio(/|\\.hpp)" OR (dep MATCHES "/kdcom/net/" AND NOT dep MATCHES "/kdcom/net/shm_attachment\\.hpp$"))
      string(APPEND failures "${source}: includes ${dep}\n")
    elseif(DEFINED FORBID AND dep MATCHES "${FORBID}")
      string(APPEND failures "${source}: includes ${dep} (forbidden here)\n")
    endif()
  endforeach()
endforeach()

if(failures)
  message(FATAL_ERROR "The guest library depends on Asio or a transport:\n${failures}")
endif()
list(LENGTH SOURCES count)
message(STATUS "${count} guest library sources use neither Asio nor a transport; links: ${LINKS}")
