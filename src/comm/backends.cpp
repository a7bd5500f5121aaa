// Which optional backends this build has. Only this file and nccl_communicator.cpp see
// FEDGAN_WITH_NCCL (set by cmake/nccl.cmake); everything else asks nccl_built().
#include "fedgan/comm/communicator.hpp"
#include "fedgan/core/error.hpp"

namespace fedgan::comm {

#ifdef FEDGAN_WITH_NCCL
std::unique_ptr<Communicator> make_nccl_communicator_impl(Communicator& host, int cuda_device);
std::string nccl_version_impl();
bool nccl_built() { return true; }
std::string nccl_version() { return nccl_version_impl(); }
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, int cuda_device) {
  return make_nccl_communicator_impl(host, cuda_device);
}
#else
bool nccl_built() { return false; }
std::string nccl_version() { return ""; }
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, int) {
  host.agree_ok(false, "--comm nccl: this fedgan was built without NCCL (configure with "
                       "-DFEDGAN_NCCL=ON and NCCL_ROOT; `fedgan info` shows the backends)");
  return nullptr;
}
#endif

}  // namespace fedgan::comm
