// Device and aggregation-backend choice (see include/fedgan/core/device.hpp).
#include "fedgan/core/device.hpp"

#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"

namespace fedgan {

const ChoiceTable<Choice<DeviceKind>>& device_kinds() {
  static const Choice<DeviceKind> entries[] = {
      {DeviceKind::Auto, "auto", "its GPU when the node has one"},
      {DeviceKind::Cpu, "cpu", ""},
      {DeviceKind::Cuda, "cuda", ""},
      {DeviceKind::Cuda, "gpu", nullptr},
  };
  static const ChoiceTable<Choice<DeviceKind>> table(entries, "--device", "device");
  return table;
}

DeviceKind parse_device_kind(const std::string& text) { return device_kinds().parse(text).value; }
std::string to_string(DeviceKind kind) { return device_kinds().name(kind); }

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

const ChoiceTable<Choice<CommKind>>& comm_kinds() {
  static const Choice<CommKind> entries[] = {
      {CommKind::Auto, "auto", "nccl when each rank has its own GPU"},
      {CommKind::Mpi, "mpi", "through host memory; works with several ranks per GPU"},
      {CommKind::Nccl, "nccl", "on the GPU"},
  };
  static const ChoiceTable<Choice<CommKind>> table(entries, "--comm", "backend");
  return table;
}

CommKind parse_comm_kind(const std::string& text) { return comm_kinds().parse(text).value; }
std::string to_string(CommKind kind) { return comm_kinds().name(kind); }

const ChoiceTable<Choice<Precision>>& precisions() {
  static const Choice<Precision> entries[] = {
      {Precision::Fp32, "fp32", ""},
      {Precision::Bf16, "bf16", "forward passes under CUDA bfloat16 autocast, losses in fp32"},
  };
  static const ChoiceTable<Choice<Precision>> table(entries, "--precision", "precision");
  return table;
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
