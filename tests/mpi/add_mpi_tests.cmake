# One CTest test per Catch2 test case of the MPI test binary and per rank count, named
# PREFIX.npN.<test case name>, so a failure report names the failing case.
#
# Included by ctest when it reads the tests (TEST_INCLUDE_FILES, see tests/CMakeLists.txt): the
# list of test cases is read from `MPIEXEC -n 1 EXE --list-test-names-only` again only when the
# executable (or this script, or its settings) is newer than the cached list, so a plain
# `ctest` costs nothing extra and the build never starts MPI.
#
# fedgan_mpi_tests_include(EXECUTABLE exe LIST_FILE file CMAKE cmake SETTINGS file
#                          MPIEXEC mpiexec [args...] RANKS n... PREFIX mpi TIMEOUT s
#                          LABELS label... ENVIRONMENT VAR=value...)
#   LIST_FILE: the cached add_test() lines; SETTINGS: the file holding this call (a change to it
#   rewrites the list).

# A Catch2 v2 test spec that matches exactly `name`: ',' separates alternatives, '[' starts a
# tag and '\' escapes, so each of those (and ']') is escaped. A leading '~', '"', '[', '*', ' '
# or "exclude:" and a trailing '*' mean something else too and cannot be escaped reliably in
# Catch2 v2: such names are refused.
function(_fedgan_catch_spec name out)
  if(NOT name MATCHES "^[A-Za-z0-9]" OR name MATCHES "\\*$" OR name MATCHES "^exclude:")
    message(FATAL_ERROR "MPI test case \"${name}\": start it with a letter or digit and do not "
                        "end it with '*' (Catch2 could not select it by name)")
  endif()
  string(REPLACE "\\" "\\\\" name "${name}")
  foreach(char , [ ])
    string(REPLACE "${char}" "\\${char}" name "${name}")
  endforeach()
  set(${out} "${name}" PARENT_SCOPE)
endfunction()

# `text` as one CMake argument in a CTest file, kept exactly (spaces, ';', quotes, '\').
function(_fedgan_bracket text out)
  if(text MATCHES "\\]==\\]")
    message(FATAL_ERROR "cannot quote \"${text}\" for CTest")
  endif()
  set(${out} "[==[${text}]==]" PARENT_SCOPE)
endfunction()

# Reads the caller's A_* settings (see fedgan_mpi_tests_include).
function(_fedgan_write_mpi_tests)
  execute_process(
    COMMAND "${A_CMAKE}" -E env ${A_ENVIRONMENT}
            ${A_MPIEXEC} -n 1 "${A_EXECUTABLE}" --list-test-names-only
    OUTPUT_VARIABLE listing ERROR_VARIABLE errors RESULT_VARIABLE rc TIMEOUT 120)
  string(REGEX REPLACE "[\r\n]+$" "" listing "${listing}")
  if(NOT rc EQUAL 0 OR listing STREQUAL "")
    # No cached list (so the next ctest tries again); one failing test shows why.
    file(REMOVE "${A_LIST_FILE}")
    set(error_file "${A_LIST_FILE}.error")
    file(WRITE "${error_file}"
         "could not list the test cases of ${A_EXECUTABLE} (exit ${rc}):\n${listing}\n${errors}\n")
    _fedgan_bracket("${A_PREFIX}.list_test_cases" test)
    set(script "add_test(${test} \"${A_CMAKE}\" -E cat \"${error_file}\")\n")
    string(APPEND script "set_tests_properties(${test} PROPERTIES WILL_FAIL TRUE LABELS \"${A_LABELS}\")\n")
    set(_fedgan_mpi_tests_script "${script}" PARENT_SCOPE)
    return()
  endif()
  file(REMOVE "${A_LIST_FILE}.error")

  _fedgan_bracket("${A_ENVIRONMENT}" environment)
  _fedgan_bracket("${A_LABELS}" labels)
  set(command)
  foreach(word IN LISTS A_MPIEXEC)
    _fedgan_bracket("${word}" word)
    string(APPEND command " ${word}")
  endforeach()
  _fedgan_bracket("${A_EXECUTABLE}" executable)
  # One name a line. Not made a CMake list: a name may hold ';'.
  foreach(n IN LISTS A_RANKS)
    set(script_np${n} "")
  endforeach()
  string(APPEND listing "\n")
  while(NOT listing STREQUAL "")
    string(FIND "${listing}" "\n" end)
    string(SUBSTRING "${listing}" 0 ${end} name)
    math(EXPR end "${end} + 1")
    string(SUBSTRING "${listing}" ${end} -1 listing)
    string(STRIP "${name}" name)
    if(name STREQUAL "")
      continue()
    endif()
    _fedgan_catch_spec("${name}" spec)
    _fedgan_bracket("${spec}" spec)
    foreach(n IN LISTS A_RANKS)
      _fedgan_bracket("${A_PREFIX}.np${n}.${name}" test)
      # --warn NoTests: a spec that matches no test case fails instead of passing silently.
      string(APPEND script_np${n}
             "add_test(${test}${command} -n ${n} ${executable} ${spec} --warn NoTests)\n"
             "set_tests_properties(${test} PROPERTIES LABELS ${labels} TIMEOUT ${A_TIMEOUT}"
             " ENVIRONMENT ${environment})\n")
    endforeach()
  endwhile()
  set(script "# Written by ${CMAKE_CURRENT_FUNCTION_LIST_FILE} from ${A_EXECUTABLE} --list-test-names-only\n")
  foreach(n IN LISTS A_RANKS)
    string(APPEND script "${script_np${n}}")
  endforeach()
  # Written whole, then renamed: a ctest started meanwhile reads the old list or the new one.
  string(RANDOM LENGTH 8 tag)
  file(WRITE "${A_LIST_FILE}.${tag}" "${script}")
  file(RENAME "${A_LIST_FILE}.${tag}" "${A_LIST_FILE}")
  set(_fedgan_mpi_tests_script "" PARENT_SCOPE)
endfunction()

function(fedgan_mpi_tests_include)
  cmake_parse_arguments(A "" "EXECUTABLE;LIST_FILE;SETTINGS;CMAKE;PREFIX;TIMEOUT"
                        "MPIEXEC;RANKS;LABELS;ENVIRONMENT" ${ARGN})
  if(NOT EXISTS "${A_EXECUTABLE}")
    # Not built yet: one test that says so (as catch_discover_tests does).
    _fedgan_bracket("${A_PREFIX}.NOT_BUILT" test)
    cmake_language(EVAL CODE "add_test(${test} [==[${A_EXECUTABLE}]==])")
    return()
  endif()
  set(_fedgan_mpi_tests_script "")
  if(NOT EXISTS "${A_LIST_FILE}" OR "${A_EXECUTABLE}" IS_NEWER_THAN "${A_LIST_FILE}"
     OR "${CMAKE_CURRENT_FUNCTION_LIST_FILE}" IS_NEWER_THAN "${A_LIST_FILE}"
     OR "${A_SETTINGS}" IS_NEWER_THAN "${A_LIST_FILE}")
    _fedgan_write_mpi_tests()
  endif()
  if(EXISTS "${A_LIST_FILE}")
    include("${A_LIST_FILE}")
  else()
    cmake_language(EVAL CODE "${_fedgan_mpi_tests_script}")
  endif()
endfunction()
