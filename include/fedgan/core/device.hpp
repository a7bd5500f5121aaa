// Where a rank computes: `--device auto|cpu|cuda` resolved against what this node has, and the
// rank's GPU picked from its rank on the node, so `CUDA_VISIBLE_DEVICES` and Slurm's
// `--gpus-per-task` (each rank sees one GPU) both work.
#pragma once

#include <torch/types.h>

#include <string>

namespace fedgan {

enum class DeviceKind { Auto, Cpu, Cuda };

// "auto" | "cpu" | "cuda" (fedgan::Error naming `flag` otherwise).
DeviceKind parse_device_kind(const std::string& text, const std::string& flag = "--device");
std::string to_string(DeviceKind kind);

// The device of a rank: Cpu -> CPU; Cuda -> GPU (local_rank mod visible GPUs), an error when
// this node has none; Auto -> the GPU when there is one, else the CPU.
torch::Device choose_device(DeviceKind kind, int local_rank);

// How the fused buffer is summed on a GPU: NCCL on the device, or MPI through host copies.
enum class CommKind { Auto, Mpi, Nccl };
CommKind parse_comm_kind(const std::string& text, const std::string& flag = "--comm");
std::string to_string(CommKind kind);

// Auto -> NCCL when the build has it, the device is a GPU and no two ranks of a node share a GPU
// (NCCL refuses that); MPI otherwise. `ranks_per_gpu` is the node's ranks over its GPUs.
CommKind resolve_comm_kind(CommKind kind, const torch::Device& device, bool nccl_built,
                           int local_size, int visible_gpus);

}  // namespace fedgan
