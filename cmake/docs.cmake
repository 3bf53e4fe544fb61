# docs.cmake - the `hmb_docs` target: an HTML API reference generated from
# the public headers and the guides by Doxygen (docs/Doxyfile.in).
#
#   cmake --build build --target hmb_docs  ->  build/docs/api/html/index.html
#
# The target is the documentation gate: an undocumented public declaration
# or parameter, a reference that does not resolve, or a relative link of the
# HTML output that leads nowhere fails it (HMB_DOCS_WERROR, ON by default;
# OFF only reports). Links from the guides to files of the repository
# (examples, LICENSE, the SPIN model) are copied into the output, so the
# reference is self-contained. cmake/doc_check.cmake does the checking.
# Without Doxygen the target is not created (a status line says so).
find_package(Doxygen QUIET)
find_program(HMB_DOCS_AWK NAMES awk mawk gawk)
mark_as_advanced(HMB_DOCS_AWK)
if(NOT DOXYGEN_FOUND OR NOT HMB_DOCS_AWK)
  message(STATUS "hmb: doxygen or awk not found; the `hmb_docs` target is "
                 "not available")
  return()
endif()

option(HMB_DOCS_WERROR "Doxygen warnings and broken links fail hmb_docs" ON)
# Where the headers and guides are read from (the source tree by default).
if(NOT HMB_DOCS_SOURCE_DIR)
  set(HMB_DOCS_SOURCE_DIR ${PROJECT_SOURCE_DIR})
endif()

set(HMB_DOCS_OUTPUT_DIR ${PROJECT_BINARY_DIR}/docs/api)
set(HMB_DOCS_WARN_LOGFILE ${PROJECT_BINARY_DIR}/docs/doxygen-warnings.log)
# Warnings are collected in the log and judged by doc_check.cmake, which
# prints them all and fails once, with a count.
set(HMB_DOCS_WARN_AS_ERROR NO)
set(HMB_DOCS_PAGES "")
foreach(page docs/usage.md docs/design.md docs/BENCHMARKS.md docs/model/README.md
             CHANGELOG.md)
  if(EXISTS ${HMB_DOCS_SOURCE_DIR}/${page})
    string(APPEND HMB_DOCS_PAGES " ${HMB_DOCS_SOURCE_DIR}/${page}")
  endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in
               ${PROJECT_BINARY_DIR}/docs/Doxyfile @ONLY)

# Always re-run (a few seconds): a failed run must never leave output that
# a later build would take as up to date.
add_custom_target(hmb_docs
  COMMAND ${CMAKE_COMMAND}
          -DDOXYGEN=$<TARGET_FILE:Doxygen::doxygen>
          -DDOXYFILE=${PROJECT_BINARY_DIR}/docs/Doxyfile
          -DLOG=${HMB_DOCS_WARN_LOGFILE}
          -DHTML=${HMB_DOCS_OUTPUT_DIR}/html
          -DSOURCE=${HMB_DOCS_SOURCE_DIR}
          -DWERROR=${HMB_DOCS_WERROR}
          -P ${CMAKE_CURRENT_LIST_DIR}/doc_check.cmake
  WORKING_DIRECTORY ${HMB_DOCS_SOURCE_DIR}
  COMMENT "Generating the API reference (docs/api/html) with Doxygen"
  SOURCES ${PROJECT_SOURCE_DIR}/docs/Doxyfile.in
          ${PROJECT_SOURCE_DIR}/docs/doxygen-errors.awk
  VERBATIM)
