# Fails unless every core header includes, by name, only what a sans-I/O core may use: the
# standard library's headers that do no I/O and start no threads, Boost.Endian, and other kdcom
# core headers (never the Asio binding, kdcom/net/). Checking what each header names, rather than
# where the preprocessor found it, means a POSIX header (<sys/socket.h>, <unistd.h>) or <thread>
# cannot slip through because it lives under /usr/include like the C++ library does.
# Run by ctest: cmake -DINCLUDE_DIR=... -DHEADERS=kdcom/a.hpp;kdcom/b.hpp -P this.
cmake_minimum_required(VERSION 3.20)
foreach(var INCLUDE_DIR HEADERS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_core_includes: ${var} not set")
  endif()
endforeach()

# The standard library headers a state machine with time as an input needs; anything that does
# I/O, reads a clock of its own accord (<ctime>), or deals in threads is left out.
set(allowed_standard
    algorithm any array atomic bit bitset cassert cctype cerrno cfloat charconv chrono cinttypes
    climits cmath compare concepts cstddef cstdint cstdio cstdlib cstring deque exception functional
    initializer_list iterator limits list map memory memory_resource new numbers numeric optional
    queue random ranges ratio set source_location span stack stdexcept string string_view
    system_error tuple type_traits typeinfo unordered_map unordered_set utility variant vector
    version
    # C headers, for layout.h, which C guests include too
    stdint.h stddef.h stdbool.h)

set(failures "")
foreach(header IN LISTS HEADERS)
  set(path ${INCLUDE_DIR}/${header})
  if(NOT EXISTS ${path})
    string(APPEND failures "${header}: not found under ${INCLUDE_DIR}\n")
    continue()
  endif()
  get_filename_component(dir ${header} DIRECTORY)
  file(STRINGS ${path} lines REGEX "^[ \t]*#[ \t]*include")
  foreach(line IN LISTS lines)
    if(line MATCHES "#[ \t]*include[ \t]*<([^>]+)>")
      set(name ${CMAKE_MATCH_1})
      set(shown "<${name}>")
    elseif(line MATCHES "#[ \t]*include[ \t]*\"([^\"]+)\"")
      # A quoted include names a header next to this one or, failing that, one on the include path.
      set(shown "\"${CMAKE_MATCH_1}\"")
      set(name ${CMAKE_MATCH_1})
      if(EXISTS ${INCLUDE_DIR}/${dir}/${name})
        get_filename_component(name ${dir}/${name} ABSOLUTE BASE_DIR /)
        string(REGEX REPLACE "^/" "" name ${name})
      endif()
    else()
      string(APPEND failures "${header}: an #include this check cannot read: ${line}\n")
      continue()
    endif()
    if(name MATCHES "^kdcom/")
      if(name MATCHES "^kdcom/net/")
        string(APPEND failures "${header}: includes ${shown}, the Asio binding, which the core must not see\n")
      elseif(NOT EXISTS ${INCLUDE_DIR}/${name})
        string(APPEND failures "${header}: includes ${shown}, which is not a core header\n")
      endif()
    elseif(name MATCHES "^boost/endian/")
      # Boost.Endian: allowed.
    elseif(NOT name IN_LIST allowed_standard)
      string(APPEND failures "${header}: includes ${shown}, which is not allowed in the core (only the standard "
                             "library without I/O or threads, Boost.Endian and kdcom core headers are)\n")
    endif()
  endforeach()
endforeach()

list(LENGTH HEADERS count)
if(failures)
  message(FATAL_ERROR "Core header boundary violated:\n${failures}")
endif()
message(STATUS "${count} core headers include only the standard library, Boost.Endian and kdcom's core")
