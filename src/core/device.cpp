// Device and aggregation-backend choice (see include/fedgan/core/device.hpp).
#include "fedgan/core/device.hpp"

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"

namespace fedgan {

DeviceKind parse_device_kind(const std::string& text, const std::string& flag) {
  if (text == "auto") return DeviceKind::Auto;
  if (text == "cpu") return DeviceKind::Cpu;
  if (text == "cuda" || text == "gpu") return DeviceKind::Cuda;
  throw Error(flag + ": expected auto, cpu or cuda, got '" + text + "'");
}

std::string to_string(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::Auto: return "auto";
    case DeviceKind::Cpu: return "cpu";
    case DeviceKind::Cuda: return "cuda";
  }
  return "?";
}

torch::Device choose_device(DeviceKind kind, int local_rank) {
  const int gpus = compat::cuda_device_count();
  if (kind == DeviceKind::Cpu || (kind == DeviceKind::Auto && gpus == 0))
    return torch::Device(torch::kCPU);
  if (gpus == 0)
    throw Error("--device cuda: no CUDA device is visible (LibTorch " + compat::torch_version() +
                (compat::cuda_available() ? "" : ", built without CUDA or no driver") +
                "); use --device cpu or auto");
  return torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(local_rank % gpus));
}

CommKind parse_comm_kind(const std::string& text, const std::string& flag) {
  if (text == "auto") return CommKind::Auto;
  if (text == "mpi") return CommKind::Mpi;
  if (text == "nccl") return CommKind::Nccl;
  throw Error(flag + ": expected auto, mpi or nccl, got '" + text + "'");
}

std::string to_string(CommKind kind) {
  switch (kind) {
    case CommKind::Auto: return "auto";
    case CommKind::Mpi: return "mpi";
    case CommKind::Nccl: return "nccl";
  }
  return "?";
}

CommKind resolve_comm_kind(CommKind kind, const torch::Device& device, bool nccl_built,
                           int local_size, int visible_gpus) {
  const bool own_gpu = device.is_cuda() && local_size <= visible_gpus;
  if (kind == CommKind::Nccl) {
    require(device.is_cuda(), "--comm nccl needs --device cuda (NCCL reduces GPU memory)");
    require(nccl_built, "--comm nccl: this fedgan was built without NCCL (-DFEDGAN_NCCL=ON)");
    require(own_gpu, "--comm nccl: " + std::to_string(local_size) + " ranks share " +
                         std::to_string(visible_gpus) +
                         " GPU(s) on this node, and NCCL refuses two ranks on one GPU; use "
                         "--comm mpi (host-staged) or one rank per GPU");
    return CommKind::Nccl;
  }
  if (kind == CommKind::Mpi) return CommKind::Mpi;
  return own_gpu && nccl_built ? CommKind::Nccl : CommKind::Mpi;
}

}  // namespace fedgan
