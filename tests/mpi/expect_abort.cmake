# Runs the hidden test case CASE of the MPI test binary EXE on 2 ranks, where rank 1 fails an
# assertion while rank 0 waits in a barrier, and checks: a non-zero exit, the failure's rank
# and test case named in the output, and an end within 20 s (the job must not hang).
# usage: cmake -DMPIEXEC=mpiexec -DEXE=fedgan_mpi_tests "-DCASE=test case name" -P expect_abort.cmake
string(TIMESTAMP start "%s")
execute_process(
  COMMAND ${MPIEXEC} --oversubscribe -n 2 ${EXE} "${CASE}" --warn NoTests
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 20)
string(TIMESTAMP stop "%s")
math(EXPR seconds "${stop} - ${start}")
message(STATUS "exit ${rc} after ${seconds} s\n${out}${err}")
if(rc MATCHES "timeout")
  message(FATAL_ERROR "the job hung: ${rc}")
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "expected a non-zero exit, got 0")
endif()
string(FIND "${out}${err}" "fedgan_mpi_tests: rank 1 of 2: test case \"${CASE}\"" named)
if(named EQUAL -1)
  message(FATAL_ERROR "the output does not name rank 1 and the failing test case")
endif()
