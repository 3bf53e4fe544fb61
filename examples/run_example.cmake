# run_example.cmake - run one example and check it the way CI does:
#   cmake -DEXAMPLE=<path> -DNAME=<name> -P run_example.cmake
# Passes when the program exits 0 and its output has a line "OK: <name>".
execute_process(COMMAND ${EXAMPLE}
                RESULT_VARIABLE rc
                OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "example ${NAME} failed (exit status ${rc})")
endif()
if(NOT out MATCHES "(^|\n)OK: ${NAME}")
  message(FATAL_ERROR "example ${NAME} did not print 'OK: ${NAME}'")
endif()
