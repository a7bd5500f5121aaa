# Optional NCCL backend (comm/nccl_communicator.cpp): the fused aggregation buffer reduced on the
# GPU with one ncclAllReduce. FEDGAN_NCCL=AUTO builds it when nccl.h, libnccl and the CUDA
# runtime are found; ON makes their absence an error; OFF leaves it out.
# Hints: NCCL_ROOT (a prefix with include/nccl.h and lib/libnccl.so*; the nvidia/nccl folder of
# the nvidia-nccl-cu13 wheel is such a prefix), CUDAToolkit_ROOT, else /usr/local/cuda.
# The backend needs only nccl.h and the CUDA runtime API, not LibTorch's CUDA headers, so it
# compiles and links on a CPU-only machine (CI) against a CPU LibTorch.
set(FEDGAN_WITH_NCCL OFF)
if(NOT FEDGAN_NCCL STREQUAL "OFF")
  find_package(CUDAToolkit QUIET)
  set(_nccl_hints ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_LIBRARY_ROOT} /usr/local/cuda)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${_nccl_hints} PATH_SUFFIXES include)
  # The wheel ships libnccl.so.2 only (no unversioned link).
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${_nccl_hints}
               PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY AND TARGET CUDA::cudart)
    set(FEDGAN_WITH_NCCL ON)
  elseif(FEDGAN_NCCL STREQUAL "ON")
    message(FATAL_ERROR "FEDGAN_NCCL=ON but NCCL was not found (nccl.h: ${NCCL_INCLUDE_DIR}, "
                        "libnccl: ${NCCL_LIBRARY}, CUDA runtime found: ${CUDAToolkit_FOUND}); "
                        "set NCCL_ROOT (e.g. the nvidia/nccl folder of a pip install)")
  endif()
endif()

if(FEDGAN_WITH_NCCL)
  add_library(fedgan::nccl UNKNOWN IMPORTED)
  set_target_properties(fedgan::nccl PROPERTIES IMPORTED_LOCATION ${NCCL_LIBRARY}
                                                INTERFACE_INCLUDE_DIRECTORIES ${NCCL_INCLUDE_DIR})
  target_sources(fedgan_core PRIVATE src/comm/nccl_communicator.cpp)
  target_link_libraries(fedgan_core PRIVATE fedgan::nccl CUDA::cudart)
  # The only definition that tells code NCCL exists; read in comm/ alone (STYLE.md).
  set_source_files_properties(src/comm/nccl_communicator.cpp src/comm/backends.cpp
                              PROPERTIES COMPILE_DEFINITIONS FEDGAN_WITH_NCCL=1)
  message(STATUS "fedgan: NCCL backend ON (${NCCL_LIBRARY}, CUDA runtime ${CUDAToolkit_VERSION})")
else()
  message(STATUS "fedgan: NCCL backend OFF (FEDGAN_NCCL=${FEDGAN_NCCL})")
endif()
