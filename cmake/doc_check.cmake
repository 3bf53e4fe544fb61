# doc_check.cmake - run Doxygen and judge its output (the hmb_docs target):
#   cmake -DDOXYGEN=<exe> -DDOXYFILE=<file> -DLOG=<warning log> -DHTML=<dir>
#         -DSOURCE=<source dir> -DWERROR=ON|OFF -P doc_check.cmake
#
# 1. Runs Doxygen on a clean output directory. Its warnings (undocumented
#    declarations or parameters, unresolved references, documentation
#    errors) go to LOG; they are all printed, then counted.
# 2. Checks every relative link of the HTML pages. A link that leads to a
#    file of the source tree (relative to the top or to docs/, where the
#    guides live) is fixed by copying that file or directory into the
#    output; any other is reported as broken.
# With WERROR on, any warning or broken link makes the script fail.
cmake_minimum_required(VERSION 3.16)
foreach(v DOXYGEN DOXYFILE LOG HTML SOURCE)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "doc_check.cmake: -D${v}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE ${HTML})
file(REMOVE ${LOG})
execute_process(COMMAND ${DOXYGEN} ${DOXYFILE} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "hmb_docs: doxygen failed (exit status ${rc})")
endif()

set(problems 0)
if(EXISTS ${LOG})
  file(STRINGS ${LOG} warnings REGEX "warning:|error:")
  list(LENGTH warnings nwarn)
  if(nwarn GREATER 0)
    file(READ ${LOG} text)
    message("${text}")
    message("hmb_docs: ${nwarn} Doxygen warning(s), listed above (${LOG})")
    math(EXPR problems "${problems} + ${nwarn}")
  endif()
endif()

# ---- relative links of the HTML output --------------------------------------
file(GLOB pages ${HTML}/*.html)
set(checked "")
set(broken 0)
foreach(page IN LISTS pages)
  file(READ ${page} html)
  string(REGEX MATCHALL "href=\"[^\"#?:]+[\"#?]" links "${html}")
  foreach(link IN LISTS links)
    string(REGEX REPLACE "^href=\"([^\"#?]+).*$" "\\1" target "${link}")
    if(target IN_LIST checked)
      continue()
    endif()
    list(APPEND checked "${target}")
    string(REGEX REPLACE "/$" "" target_path "${target}")
    # A generated file; a directory may still need files from the source.
    if(EXISTS ${HTML}/${target_path} AND NOT IS_DIRECTORY ${HTML}/${target_path})
      continue()
    endif()
    set(found "")
    foreach(base ${SOURCE} ${SOURCE}/docs)
      if(NOT found AND EXISTS ${base}/${target_path})
        set(found ${base}/${target_path})
      endif()
    endforeach()
    if(NOT found AND EXISTS ${HTML}/${target_path})
      continue() # a directory of the output itself
    elseif(found)
      get_filename_component(dest ${HTML}/${target_path} DIRECTORY)
      file(COPY ${found} DESTINATION ${dest}) # a file or a whole directory
    else()
      get_filename_component(name ${page} NAME)
      message("hmb_docs: broken link in ${name}: ${target}")
      math(EXPR broken "${broken} + 1")
    endif()
  endforeach()
endforeach()
if(broken GREATER 0)
  message("hmb_docs: ${broken} broken link(s)")
  math(EXPR problems "${problems} + ${broken}")
endif()

if(problems GREATER 0 AND WERROR)
  message(FATAL_ERROR "hmb_docs: the documentation gate failed "
          "(${problems} problem(s); configure with -DHMB_DOCS_WERROR=OFF "
          "to only report them)")
endif()
message("hmb_docs: ${HTML}/index.html")
