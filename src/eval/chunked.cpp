// Evaluation in fixed chunks (see include/fedgan/eval/chunked.hpp).
#include "fedgan/eval/chunked.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>

#include "fedgan/comm/collective.hpp"
#include "fedgan/core/error.hpp"

namespace fedgan::eval {
namespace {

// Units a rank computes per round: enough to keep a node's cores busy, few enough that a
// round's gathered results (for d = 128 about 130 KB per unit) stay small at any rank count.
constexpr std::int64_t kUnitsPerRankPerRound = 16;

}  // namespace

std::int64_t chunk_count(std::int64_t n, std::int64_t chunk) {
  require(chunk >= 1, "evaluation: the chunk size must be positive, got " + std::to_string(chunk));
  return n <= 0 ? 0 : (n + chunk - 1) / chunk;
}

SingleThreadScope::SingleThreadScope() : m_previous(at::get_num_threads()) {
  if (m_previous != 1) at::set_num_threads(1);
}

SingleThreadScope::~SingleThreadScope() {
  if (m_previous != 1) at::set_num_threads(m_previous);
}

void for_each_single_threaded(std::int64_t count, int workers,
                              const std::function<void(std::int64_t)>& fn) {
  if (count <= 0) return;
  // Pins this thread, and sets the process-wide default that new threads start from, to 1.
  SingleThreadScope single;
  const auto threads = static_cast<int>(std::clamp<std::int64_t>(workers, 1, count));
  std::atomic<std::int64_t> next{0};
  std::mutex failure_mutex;
  std::exception_ptr failure;
  const auto work = [&] {
    torch::NoGradGuard no_grad;  // thread-local, like the intra-op thread count
    for (auto i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      try {
        fn(i);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next.store(count);
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) {
    try {
      pool.emplace_back([&work] {
        at::set_num_threads(1);
        work();
      });
    } catch (const std::system_error&) {
      break;  // fewer threads only make it slower, never different
    }
  }
  work();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

void append_tensor(UnitBytes& out, const torch::Tensor& tensor) {
  const auto t = tensor.to(torch::kCPU).contiguous();
  const auto bytes = static_cast<std::size_t>(t.numel()) * t.element_size();
  const auto at = out.size();
  out.resize(at + bytes);
  if (bytes > 0) std::memcpy(out.data() + at, t.data_ptr(), bytes);
}

torch::Tensor read_tensor(const UnitBytes& data, std::size_t& offset, at::IntArrayRef shape,
                          torch::Dtype dtype) {
  auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  const auto bytes = static_cast<std::size_t>(t.numel()) * t.element_size();
  require(offset + bytes <= data.size(), "evaluation: a gathered unit result is truncated");
  if (bytes > 0) std::memcpy(t.data_ptr(), data.data() + offset, bytes);
  offset += bytes;
  return t;
}

void for_each_unit_in_order(comm::Communicator& comm, std::int64_t units, int workers,
                            const std::function<UnitBytes(std::int64_t)>& compute,
                            const std::function<void(std::int64_t, const UnitBytes&)>& consume) {
  const std::int64_t ranks = comm.size(), rank = comm.rank();
  const std::int64_t per_round = kUnitsPerRankPerRound * ranks;
  for (std::int64_t first = 0; first < units; first += per_round) {
    const auto last = std::min(units, first + per_round);
    // This rank's units of the round: first + rank, first + rank + ranks, ...
    std::vector<std::int64_t> mine;
    for (auto u = first + rank; u < last; u += ranks) mine.push_back(u);
    std::vector<UnitBytes> results(mine.size());
    comm::collective_try(comm, [&] {
      for_each_single_threaded(
          static_cast<std::int64_t>(mine.size()), workers, [&](std::int64_t i) {
            results[static_cast<std::size_t>(i)] = compute(mine[static_cast<std::size_t>(i)]);
          });
    });
    // Each unit's bytes prefixed by their length, in increasing unit order.
    UnitBytes packed;
    for (const auto& r : results) {
      const std::uint64_t len = r.size();
      const auto* p = reinterpret_cast<const std::uint8_t*>(&len);
      packed.insert(packed.end(), p, p + sizeof len);
      packed.insert(packed.end(), r.begin(), r.end());
    }
    results.clear();
    const auto gathered = comm.allgatherv(packed.data(), packed.size());
    std::vector<std::size_t> offsets(gathered.size(), 0);
    UnitBytes unit;
    for (auto u = first; u < last; ++u) {
      const auto& from = gathered[static_cast<std::size_t>(u % ranks)];
      auto& offset = offsets[static_cast<std::size_t>(u % ranks)];
      std::uint64_t len = 0;
      require(offset + sizeof len <= from.size(),
              "evaluation: gathered unit results are truncated");
      std::memcpy(&len, from.data() + offset, sizeof len);
      offset += sizeof len;
      require(offset + len <= from.size(), "evaluation: gathered unit results are truncated");
      unit.assign(from.begin() + static_cast<std::ptrdiff_t>(offset),
                  from.begin() + static_cast<std::ptrdiff_t>(offset + len));
      offset += len;
      consume(u, unit);
    }
  }
}

}  // namespace fedgan::eval
