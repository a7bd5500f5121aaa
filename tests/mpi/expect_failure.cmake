# Runs `fedgan debug-fail` on 4 ranks with rank 2 failing and checks: non-zero exit, the
# injected message in the output, and an end within 30 s (the job must not hang).
string(TIMESTAMP start "%s")
execute_process(
  COMMAND ${MPIEXEC} --oversubscribe -n 4 ${FEDGAN} debug-fail --rank 2 --mode ${MODE}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 30)
string(TIMESTAMP stop "%s")
math(EXPR seconds "${stop} - ${start}")
message(STATUS "exit ${rc} after ${seconds} s\n${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "expected a non-zero exit, got 0")
endif()
if(rc MATCHES "timeout")
  message(FATAL_ERROR "the job hung: ${rc}")
endif()
if(NOT "${out}${err}" MATCHES "injected")
  message(FATAL_ERROR "the failing rank's message is missing from the output")
endif()
if(MODE STREQUAL "agreed" AND NOT "${out}${err}" MATCHES "rank 2: debug-fail")
  message(FATAL_ERROR "the agreed error must name the failing rank")
endif()
