# Run every test of a build tree under valgrind memcheck, with the command
# line, working directory and environment ctest would give it.
#
#   cmake -DBUILD=build [-DEXCLUDE=regex] [-DVALGRIND=valgrind] -P scripts/memcheck.cmake
#
# EXCLUDE: test names to skip (a CMake regular expression). The tests are
# read from `ctest --show-only=json-v1`, so a test registered anywhere in
# the tree (tests/, tests/cpp/, integrations/) is found where it was built.
# Prints one line per test; fails at the first test that valgrind reports.
# valgrind runs one thread at a time; --fair-sched hands that turn round in
# order, without which a thread that polls in a loop can keep it for seconds
# and starve the thread it waits for (a test then took 1 to 30 s, at random).
cmake_minimum_required(VERSION 3.19) # string(JSON)

if(NOT BUILD)
  message(FATAL_ERROR "memcheck.cmake: pass -DBUILD=<build tree>")
endif()
if(NOT VALGRIND)
  set(VALGRIND valgrind)
endif()

execute_process(COMMAND ctest --test-dir "${BUILD}" --show-only=json-v1
                OUTPUT_VARIABLE js RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "memcheck.cmake: ctest could not list ${BUILD}: ${err}")
endif()

string(JSON ntests LENGTH "${js}" tests)
if(ntests EQUAL 0)
  message(FATAL_ERROR "memcheck.cmake: no tests in ${BUILD}")
endif()
math(EXPR last "${ntests} - 1")
set(checked 0)
foreach(i RANGE ${last})
  string(JSON name GET "${js}" tests ${i} name)
  if(EXCLUDE AND name MATCHES "${EXCLUDE}")
    message("memcheck skipped: ${name}")
    continue()
  endif()
  string(JSON ncmd LENGTH "${js}" tests ${i} command)
  math(EXPR clast "${ncmd} - 1")
  set(cmd "")
  foreach(j RANGE ${clast})
    string(JSON arg GET "${js}" tests ${i} command ${j})
    list(APPEND cmd "${arg}")
  endforeach()
  # Working directory and environment, as ctest would set them.
  set(wd "${BUILD}")
  set(envset "")
  string(JSON nprops ERROR_VARIABLE noprops LENGTH "${js}" tests ${i} properties)
  if(NOT noprops AND nprops GREATER 0)
    math(EXPR plast "${nprops} - 1")
    foreach(k RANGE ${plast})
      string(JSON pname GET "${js}" tests ${i} properties ${k} name)
      if(pname STREQUAL "WORKING_DIRECTORY")
        string(JSON wd GET "${js}" tests ${i} properties ${k} value)
      elseif(pname STREQUAL "ENVIRONMENT")
        string(JSON nenv LENGTH "${js}" tests ${i} properties ${k} value)
        math(EXPR elast "${nenv} - 1")
        foreach(e RANGE ${elast})
          string(JSON kv GET "${js}" tests ${i} properties ${k} value ${e})
          string(FIND "${kv}" "=" eq)
          string(SUBSTRING "${kv}" 0 ${eq} ek)
          math(EXPR vstart "${eq} + 1")
          string(SUBSTRING "${kv}" ${vstart} -1 ev)
          set(ENV{${ek}} "${ev}")
          list(APPEND envset "${ek}")
        endforeach()
      endif()
    endforeach()
  endif()
  string(TIMESTAMP t0 "%s")
  execute_process(
    COMMAND "${VALGRIND}" -q --error-exitcode=97 --leak-check=full
            --errors-for-leak-kinds=definite,indirect --fair-sched=try ${cmd}
    WORKING_DIRECTORY "${wd}"
    RESULT_VARIABLE r OUTPUT_QUIET ERROR_VARIABLE verr)
  foreach(ek IN LISTS envset)
    unset(ENV{${ek}})
  endforeach()
  string(TIMESTAMP t1 "%s")
  math(EXPR dt "${t1} - ${t0}")
  if(NOT r EQUAL 0)
    string(LENGTH "${verr}" vlen)
    if(vlen GREATER 6000)
      math(EXPR from "${vlen} - 6000")
      string(SUBSTRING "${verr}" ${from} -1 verr)
    endif()
    message("${verr}")
    if(r EQUAL 97)
      message(FATAL_ERROR "memcheck failed: ${name} (valgrind found errors)")
    endif()
    message(FATAL_ERROR "memcheck failed: ${name} (exit status ${r})")
  endif()
  message("memcheck clean: ${name} (${dt} s)")
  math(EXPR checked "${checked} + 1")
endforeach()
message("memcheck: ${checked} tests clean")
