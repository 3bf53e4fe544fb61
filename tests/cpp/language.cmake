# language.cmake - enable C++ for the wrapper tests when a C++ compiler is
# found; included from tests/CMakeLists.txt. Leaves CMAKE_CXX_COMPILER
# empty or NOTFOUND (and the C build untouched) when there is none.
#
# Without CXX in the environment or CMAKE_CXX_COMPILER on the command line,
# the C++ compiler that matches the C compiler is tried first (clang++ for
# clang, g++ for gcc, same directory and version suffix): a sanitizer build
# then links one sanitizer runtime, the one of the C objects' compiler.
include(CheckLanguage)

if(NOT DEFINED CMAKE_CXX_COMPILER AND NOT DEFINED ENV{CXX})
  get_filename_component(_hmb_cc_dir "${CMAKE_C_COMPILER}" DIRECTORY)
  get_filename_component(_hmb_cc_name "${CMAKE_C_COMPILER}" NAME)
  set(_hmb_cxx_names "")
  if(CMAKE_C_COMPILER_ID MATCHES "Clang")
    set(_hmb_from clang)
    set(_hmb_to clang++)
  elseif(CMAKE_C_COMPILER_ID STREQUAL "GNU")
    set(_hmb_from gcc)
    set(_hmb_to g++)
  endif()
  if(_hmb_to)
    # "clang-14" -> "clang++-14", "x86_64-linux-gnu-gcc-12" -> "...-g++-12";
    # a plain "cc" gives no same-named candidate.
    string(REPLACE "${_hmb_from}" "${_hmb_to}" _hmb_same "${_hmb_cc_name}")
    if(NOT _hmb_same STREQUAL _hmb_cc_name)
      list(APPEND _hmb_cxx_names "${_hmb_same}")
    endif()
    list(APPEND _hmb_cxx_names ${_hmb_to})
  endif()
  if(_hmb_cxx_names)
    find_program(HMB_MATCHING_CXX NAMES ${_hmb_cxx_names}
                 HINTS "${_hmb_cc_dir}" NO_CACHE)
    if(HMB_MATCHING_CXX)
      # check_language() runs a separate CMake that reads CXX from here.
      set(ENV{CXX} "${HMB_MATCHING_CXX}")
    endif()
  endif()
endif()

check_language(CXX)
if(CMAKE_CXX_COMPILER)
  enable_language(CXX)
  message(STATUS "hmb: C++ wrapper tests use ${CMAKE_CXX_COMPILER}")
else()
  message(STATUS "hmb: no C++ compiler: the C++ wrapper tests are skipped")
endif()
