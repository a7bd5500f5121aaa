// Where a rank computes: `--device auto|cpu|cuda` resolved against what this node has, and the
// rank's GPU picked from its rank on the node, so `CUDA_VISIBLE_DEVICES` and Slurm's
// `--gpus-per-task` (each rank sees one GPU) both work.
#pragma once

#include <torch/types.h>

#include <string>

#include "fedgan/core/choice.hpp"

namespace fedgan {

enum class DeviceKind { Auto, Cpu, Cuda };

// --device: auto | cpu | cuda ("gpu": a hidden alias of cuda).
const ChoiceTable<Choice<DeviceKind>>& device_kinds();
// fedgan::Error naming --device and the names for an unknown one.
DeviceKind parse_device_kind(const std::string& text);
std::string to_string(DeviceKind kind);

// The device of a rank: Cpu -> CPU; Cuda -> GPU (local_rank mod visible GPUs), an error when
// this node has none; Auto -> the GPU when there is one, else the CPU.
torch::Device choose_device(DeviceKind kind, int local_rank);

// How the fused buffer is summed on a GPU: NCCL on the device, or MPI through host copies.
enum class CommKind { Auto, Mpi, Nccl };
// --comm: auto | mpi | nccl.
const ChoiceTable<Choice<CommKind>>& comm_kinds();
CommKind parse_comm_kind(const std::string& text);
std::string to_string(CommKind kind);

// --precision: fp32, or bf16 (forward passes under CUDA bfloat16 autocast).
enum class Precision { Fp32, Bf16 };
const ChoiceTable<Choice<Precision>>& precisions();

// Auto -> NCCL when the build has it, the device is a GPU and no two ranks of a node share a GPU
// (NCCL refuses that); MPI otherwise. `ranks_per_gpu` is the node's ranks over its GPUs.
CommKind resolve_comm_kind(CommKind kind, const torch::Device& device, bool nccl_built,
                           int local_size, int visible_gpus);

}  // namespace fedgan
