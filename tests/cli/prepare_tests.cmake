# `fedgan prepare` command-line tests, included from tests/CMakeLists.txt: a good run, and each
# bad input giving a non-zero exit, a message naming the fault, and no output file.
add_executable(make_bad_inputs ${CMAKE_CURRENT_LIST_DIR}/make_bad_inputs.cpp)
target_link_libraries(make_bad_inputs PRIVATE fedgan::core fedgan_warnings)

set(FEDGAN_BAD ${CMAKE_CURRENT_BINARY_DIR}/bad_inputs)
add_test(NAME cli.prepare.make_inputs COMMAND make_bad_inputs ${FEDGAN_BAD})
set_tests_properties(cli.prepare.make_inputs PROPERTIES FIXTURES_SETUP prepare_inputs
  LABELS "unit;cli")

# fedgan_prepare_ok(NAME "REGEX" ARGS...): `fedgan prepare` of small.h5 with ARGS succeeds and
# prints REGEX.
function(fedgan_prepare_ok name expect)
  add_test(NAME cli.prepare.${name}
    COMMAND fedgan prepare --dataset hdf5 --source ${FEDGAN_BAD}/small.h5 ${ARGN} --force)
  set_tests_properties(cli.prepare.${name} PROPERTIES FIXTURES_REQUIRED prepare_inputs
    LABELS "unit;cli" TIMEOUT 60 ENVIRONMENT "${FEDGAN_MPI_ENV}"
    PASS_REGULAR_EXPRESSION "${expect}")
endfunction()

fedgan_prepare_ok(ok "wrote .*ok.h5 \\(10 samples\\)"
  --parties 2 --partition shards --shards-per-party 1 --out ${FEDGAN_BAD}/ok.h5)
# Few-shot parties: 2 IID parties of 5 rows capped at 3 each; the file holds the 6 kept rows.
fedgan_prepare_ok(max_per_party "wrote .*capped.h5 \\(6 samples\\)"
  --parties 2 --partition iid --max-per-party 3 --out ${FEDGAN_BAD}/capped.h5)

# fedgan_prepare_error(NAME "REGEX" [NP2] ARGS...): ARGS go to `fedgan prepare`.
function(fedgan_prepare_error name expect)
  set(args ${ARGN})
  set(mpi "")
  if(args AND "${ARGV2}" STREQUAL "NP2")
    list(POP_FRONT args)
    set(mpi -DMPIEXEC=${MPIEXEC_EXECUTABLE})
  endif()
  set(out ${FEDGAN_BAD}/out_${name}.h5)
  if("--out" IN_LIST args)
    set(out "")
    list(FIND args "--out" at)
    math(EXPR at "${at} + 1")
    list(GET args ${at} out)
  else()
    list(APPEND args --out ${out})
  endif()
  string(REPLACE ";" "|" joined "prepare;${args}")
  add_test(NAME cli.prepare.${name}
    COMMAND ${CMAKE_COMMAND} -DFEDGAN=$<TARGET_FILE:fedgan> "-DARGS=${joined}"
            "-DEXPECT=${expect}" -DOUT=${out} ${mpi}
            -P ${CMAKE_CURRENT_LIST_DIR}/expect_error.cmake)
  set_tests_properties(cli.prepare.${name} PROPERTIES FIXTURES_REQUIRED prepare_inputs
    LABELS "unit;cli" TIMEOUT 90 ENVIRONMENT "${FEDGAN_MPI_ENV}")
endfunction()

set(small --dataset hdf5 --source ${FEDGAN_BAD}/small.h5)
fedgan_prepare_error(idx_missing "idx_missing: missing Fashion-MNIST file train-images"
  --source ${FEDGAN_BAD}/idx_missing)
fedgan_prepare_error(idx_truncated "train-images-idx3-ubyte.gz: truncated IDX file"
  --source ${FEDGAN_BAD}/idx_truncated)
fedgan_prepare_error(idx_wrong_magic "train-images-idx3-ubyte: not an unsigned-byte IDX file.*magic"
  --source ${FEDGAN_BAD}/idx_magic)
fedgan_prepare_error(hdf5_missing "nothing.h5: no such file"
  --dataset hdf5 --source ${FEDGAN_BAD}/nothing.h5)
fedgan_prepare_error(hdf5_no_images "no_images.h5: missing dataset /images"
  --dataset hdf5 --source ${FEDGAN_BAD}/no_images.h5)
fedgan_prepare_error(hdf5_labels_length "labels_length.h5: /labels holds 9 labels for 10 images"
  --dataset hdf5 --source ${FEDGAN_BAD}/labels_length.h5)
fedgan_prepare_error(hdf5_images_type "bad_type.h5: /images has element type"
  --dataset hdf5 --source ${FEDGAN_BAD}/bad_type.h5)
fedgan_prepare_error(hdf5_images_rank "bad_rank.h5: /images has rank 2"
  --dataset hdf5 --source ${FEDGAN_BAD}/bad_rank.h5)
fedgan_prepare_error(parties_zero "--parties must be at least 1" ${small} --parties 0)
fedgan_prepare_error(parties_zero_np2 "--parties must be at least 1" NP2 ${small} --parties 0)
fedgan_prepare_error(alpha_zero "--alpha .* must be > 0" ${small} --partition dirichlet --alpha 0)
fedgan_prepare_error(too_many_parties "--parties 11 exceeds the 10 samples" ${small} --parties 11)
fedgan_prepare_error(unknown_class "unknown class id 2" ${small} --classes 0,2)
fedgan_prepare_error(unknown_partition "unknown method 'pareto'" ${small} --partition pareto)
fedgan_prepare_error(exists_no_force "existing.h5: exists already; pass --force" ${small}
  --out ${FEDGAN_BAD}/existing.h5)
fedgan_prepare_error(max_per_party_negative "--max-per-party.*-1 is negative"
  ${small} --parties 2 --max-per-party=-1)
