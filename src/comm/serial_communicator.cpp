// The size-1 communicator: lets every code path run without MPI (tests, single-process use).
#include "fedgan/comm/communicator.hpp"
#include "fedgan/core/error.hpp"

#include <cstdlib>
#include <cstring>

namespace fedgan::comm {
namespace {

class SerialCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string backend() const override { return "serial"; }
  void allreduce_sum(void*, std::size_t, DType) override {}
  void allreduce_max(std::int64_t*, std::size_t) override {}
  void broadcast(void*, std::size_t, int) override {}
  void allgather(const void* in, std::size_t bytes, void* out) override {
    if (bytes > 0 && in != out) std::memmove(out, in, bytes);
  }
  std::vector<std::vector<std::uint8_t>> allgatherv(const void* in, std::size_t bytes) override {
    const auto* p = static_cast<const std::uint8_t*>(in);
    return {std::vector<std::uint8_t>(p, p + bytes)};
  }
  void allgatherv_into(const void* in, void* out, const std::vector<std::size_t>& counts,
                       DType type) override {
    const std::size_t bytes = counts.at(0) * dtype_size(type);
    if (bytes > 0 && in != out) std::memmove(out, in, bytes);
  }
  void alltoallv(const void* send, const std::vector<std::size_t>& send_counts, void* recv,
                 const std::vector<std::size_t>& recv_counts, DType type) override {
    require(send_counts.size() == 1 && recv_counts.size() == 1 && send_counts[0] == recv_counts[0],
            "alltoallv: the send and receive counts of a single rank must match");
    const std::size_t bytes = send_counts[0] * dtype_size(type);
    if (bytes > 0 && send != recv) std::memmove(recv, send, bytes);
  }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::_Exit(code); }
};

}  // namespace

std::unique_ptr<Communicator> make_serial_communicator() {
  return std::make_unique<SerialCommunicator>();
}

}  // namespace fedgan::comm
