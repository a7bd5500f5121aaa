// Evaluation in fixed chunks, so that every figure is the same at any rank or thread count.
// Float32 kernels (oneDNN convolutions, OpenBLAS sgemm) may choose other code paths for another
// batch size or thread count, and float64 sums depend on their grouping. So evaluation work is
// cut into units fixed by the data alone (chunk c = global samples [c*K, (c+1)*K)), each unit
// runs its forwards and sums on one intra-op thread, and units' results are combined in unit
// order on every rank. Ranks and threads only decide who computes a unit, never how.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "fedgan/comm/communicator.hpp"

namespace fedgan::eval {

// Samples per chunk unless configured: one generator and one evaluator forward each.
inline constexpr std::int64_t kDefaultChunk = 256;

// Chunks of `chunk` samples covering n samples (the last may be shorter).
std::int64_t chunk_count(std::int64_t n, std::int64_t chunk);

// One intra-op thread for this thread within the scope (restored on exit): what LibTorch, oneDNN
// and OpenBLAS compute then does not depend on the configured thread count.
class SingleThreadScope {
 public:
  SingleThreadScope();
  ~SingleThreadScope();
  SingleThreadScope(const SingleThreadScope&) = delete;
  SingleThreadScope& operator=(const SingleThreadScope&) = delete;

 private:
  int m_previous;
};

// Eval mode for a module within the scope (its training flag restored on exit).
class EvalModeScope {
 public:
  explicit EvalModeScope(torch::nn::Module& module)
      : m_module(module), m_was_training(module.is_training()) {
    module.eval();
  }
  ~EvalModeScope() { m_module.train(m_was_training); }
  EvalModeScope(const EvalModeScope&) = delete;
  EvalModeScope& operator=(const EvalModeScope&) = delete;

 private:
  torch::nn::Module& m_module;
  bool m_was_training;
};

// Calls fn(i) for every i in [0, count), spread over up to `workers` threads (the caller's
// included), each with one intra-op thread and gradients off; returns when all calls are done
// and rethrows the first exception. fn must be safe to call from several threads at once. Each
// call does the arithmetic of a single-threaded run, so its results do not depend on `workers`.
void for_each_single_threaded(std::int64_t count, int workers,
                              const std::function<void(std::int64_t)>& fn);

// The result of one unit of work as bytes (tensors appended raw, read back in the same order).
using UnitBytes = std::vector<std::uint8_t>;
void append_tensor(UnitBytes& out, const torch::Tensor& tensor);  // any device; copied to CPU
// Reads a CPU tensor of this shape and type from `data` at `offset`, advancing `offset`.
torch::Tensor read_tensor(const UnitBytes& data, std::size_t& offset, at::IntArrayRef shape,
                          torch::Dtype dtype);

// Collective. Work in `units` ordered units, unit u done by rank u % size: each rank runs
// `compute(u)` for its units (on `workers` single-threaded workers, see above), in rounds of a
// bounded number of units so memory stays bounded; every round's results are gathered and every
// rank calls `consume(u, bytes)` for all units of the round in increasing u. An exception in
// `compute` on any rank becomes the same collective fedgan::Error on every rank.
void for_each_unit_in_order(comm::Communicator& comm, std::int64_t units, int workers,
                            const std::function<UnitBytes(std::int64_t)>& compute,
                            const std::function<void(std::int64_t, const UnitBytes&)>& consume);

}  // namespace fedgan::eval
