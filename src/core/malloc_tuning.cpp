// glibc malloc settings (see include/fedgan/core/malloc_tuning.hpp).
#include "fedgan/core/malloc_tuning.hpp"

#include <cstdlib>  // defines __GLIBC__ on glibc

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace fedgan {

bool keep_freed_memory() {
#if defined(__GLIBC__)
  // mallopt's largest accepted mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX); setting
  // either value also stops glibc from adapting them.
  constexpr int kMmapThreshold = 32 << 20;
  constexpr int kTrimThreshold = 1 << 30;
  const bool mmap_set = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1;
  const bool trim_set = mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
  return mmap_set && trim_set;
#else
  return false;
#endif
}

}  // namespace fedgan
