// Backend-independent parts of Communicator: typed helpers and error agreement.
#include "fedgan/comm/communicator.hpp"

#include "fedgan/core/error.hpp"

#include <torch/types.h>

#include <cstring>

namespace fedgan::comm {

std::size_t dtype_size(DType type) {
  switch (type) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Int64: return 8;
    case DType::Byte: return 1;
    case DType::UInt64: return 8;
  }
  return 1;
}

namespace {
DType dtype_of(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return DType::Float32;
    case torch::kFloat64: return DType::Float64;
    case torch::kInt64: return DType::Int64;
    case torch::kUInt8: return DType::Byte;
    default:
      throw Error("communicator: tensor dtype " + std::string(c10::toString(t.scalar_type())) +
                  " is not supported (expected float32, float64, int64 or uint8)");
  }
}
void check_tensor(const torch::Tensor& t) {
  require(t.is_contiguous(), "communicator: tensor must be contiguous");
}

// A host copy of a device tensor for MPI (pinned, so the copies run at full bus speed), and
// the copy back into the device tensor after the collective.
template <class Fn>
void staged(torch::Tensor& tensor, Fn&& collective) {
  if (tensor.device().is_cpu()) {
    collective(tensor);
    return;
  }
  auto host = torch::empty(tensor.sizes(),
                           tensor.options().device(torch::kCPU).pinned_memory(true));
  host.copy_(tensor);  // waits for the kernels that produced `tensor`
  collective(host);
  tensor.copy_(host);
}
}  // namespace

void Communicator::allreduce_sum(torch::Tensor& tensor) {
  check_tensor(tensor);
  const DType type = dtype_of(tensor);
  require(type != DType::Byte, "communicator: allreduce_sum of uint8 is not supported");
  if (size() == 1) return;  // a sum over one rank: no copy to the host and back
  staged(tensor, [&](torch::Tensor& t) {
    allreduce_sum(t.data_ptr(), static_cast<std::size_t>(t.numel()), type);
  });
}

void Communicator::broadcast(torch::Tensor& tensor, int root) {
  check_tensor(tensor);
  const std::size_t bytes = tensor.numel() * dtype_size(dtype_of(tensor));
  if (size() == 1) return;
  staged(tensor, [&](torch::Tensor& t) { broadcast(t.data_ptr(), bytes, root); });
}

void Communicator::broadcast(std::string& text, int root) {
  std::int64_t length = static_cast<std::int64_t>(text.size());
  broadcast(&length, sizeof(length), root);
  text.resize(static_cast<std::size_t>(length));
  if (length > 0) broadcast(text.data(), text.size(), root);
}

std::vector<std::string> Communicator::allgather(const std::string& text) {
  auto parts = allgatherv(text.data(), text.size());
  std::vector<std::string> out;
  out.reserve(parts.size());
  for (auto& p : parts) out.emplace_back(p.begin(), p.end());
  return out;
}

void Communicator::agree_ok(bool local_ok, const std::string& message) {
  // Lowest failing rank, encoded so that max() finds it: size - rank, or 0 when fine.
  std::int64_t code = local_ok ? 0 : static_cast<std::int64_t>(size() - rank());
  allreduce_max(&code, 1);
  if (code == 0) return;
  const int failing = size() - static_cast<int>(code);
  std::string text = message;
  broadcast(text, failing);
  if (size() > 1) text = "rank " + std::to_string(failing) + ": " + text;
  throw Error(text, /*collective=*/true);
}

}  // namespace fedgan::comm
