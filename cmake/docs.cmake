# docs.cmake - the `hmb_docs` target: an HTML API reference generated from the
# public headers by Doxygen (docs/Doxyfile.in).
#
#   cmake --build build --target hmb_docs  ->  build/docs/api/html/index.html
#
# A public declaration without a doc comment is a warning, and warnings fail
# the target. HMB_DOCS_WARN_AS_ERROR picks Doxygen's mode: FAIL_ON_WARNINGS
# (default) lists every warning and then fails; YES stops at the first one.
# Without Doxygen the target is not created (a status line says so).
find_package(Doxygen QUIET)
if(NOT DOXYGEN_FOUND)
  message(STATUS "hmb: doxygen not found; the `hmb_docs` target is not available")
  return()
endif()

set(HMB_DOCS_WARN_AS_ERROR "FAIL_ON_WARNINGS" CACHE STRING
    "Doxygen WARN_AS_ERROR for the docs target: FAIL_ON_WARNINGS, YES or NO")
set_property(CACHE HMB_DOCS_WARN_AS_ERROR
             PROPERTY STRINGS FAIL_ON_WARNINGS YES NO)
if(DOXYGEN_VERSION VERSION_LESS 1.9.1 AND
   HMB_DOCS_WARN_AS_ERROR STREQUAL "FAIL_ON_WARNINGS")
  set(HMB_DOCS_WARN_AS_ERROR YES) # older Doxygen knows only YES/NO
endif()

set(HMB_DOCS_OUTPUT_DIR ${PROJECT_BINARY_DIR}/docs/api)
configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in
               ${PROJECT_BINARY_DIR}/docs/Doxyfile @ONLY)

# Always re-run (a second or two): a failed run must never leave output that
# a later build would take as up to date.
add_custom_target(hmb_docs
  COMMAND ${CMAKE_COMMAND} -E make_directory ${HMB_DOCS_OUTPUT_DIR}
  COMMAND Doxygen::doxygen ${PROJECT_BINARY_DIR}/docs/Doxyfile
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  COMMENT "Generating the API reference (docs/api/html) with Doxygen"
  SOURCES ${PROJECT_SOURCE_DIR}/docs/Doxyfile.in
          ${PROJECT_SOURCE_DIR}/docs/doxygen-filter.sed
  VERBATIM)
