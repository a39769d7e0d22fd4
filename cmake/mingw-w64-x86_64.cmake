# Cross-compiling kdcom for 64-bit Windows with Debian's mingw-w64 (the -posix variant, which has
# std::thread), running the results under Wine. Use: cmake -DCMAKE_TOOLCHAIN_FILE=this-file ...
# (scripts/check-windows.sh does).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Self-contained executables: Wine then needs no MinGW runtime DLLs on its path.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/lib/wine/wine64)

# Asio and Boost are header-only and the same for every target, but putting all of /usr/include on
# the cross compiler's path breaks it (it would pick up glibc's headers). A folder holding links to
# just those headers is enough.
set(KDCOM_HOST_HEADERS ${CMAKE_BINARY_DIR}/host-headers)
if(NOT EXISTS ${KDCOM_HOST_HEADERS}/asio.hpp)
  file(MAKE_DIRECTORY ${KDCOM_HOST_HEADERS})
  foreach(entry asio asio.hpp boost)
    file(CREATE_LINK /usr/include/${entry} ${KDCOM_HOST_HEADERS}/${entry} SYMBOLIC)
  endforeach()
endif()
set(KDCOM_ASIO_INCLUDE_DIR ${KDCOM_HOST_HEADERS} CACHE PATH "")
set(Boost_INCLUDE_DIR ${KDCOM_HOST_HEADERS} CACHE PATH "")
set(Boost_NO_BOOST_CMAKE ON)
