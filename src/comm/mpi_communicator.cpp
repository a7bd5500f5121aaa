// MPI backend of Communicator over MPI_COMM_WORLD. The only file that includes <mpi.h>.
#include <mpi.h>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/core/error.hpp"

#include <climits>

namespace fedgan::comm {
namespace {

bool g_we_initialised = false;

void check_mpi(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(std::string("MPI call ") + what + " failed: " + std::string(text, length));
}

MPI_Datatype mpi_type(DType type) {
  switch (type) {
    case DType::Float32: return MPI_FLOAT;
    case DType::Float64: return MPI_DOUBLE;
    case DType::Int64: return MPI_INT64_T;
    case DType::Byte: return MPI_BYTE;
    case DType::UInt64: return MPI_UINT64_T;
  }
  return MPI_BYTE;
}

// MPI counts are int: large buffers travel in chunks below INT_MAX elements.
constexpr std::size_t kMaxChunk = static_cast<std::size_t>(INT_MAX) / 2;

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &m_comm), "MPI_Comm_dup");
    // Errors come back as codes, so they become fedgan::Error with a message.
    MPI_Comm_set_errhandler(m_comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m_comm, &m_rank);
    MPI_Comm_size(m_comm, &m_size);
    check_mpi(MPI_Comm_split_type(m_comm, MPI_COMM_TYPE_SHARED, m_rank, MPI_INFO_NULL, &m_node),
              "MPI_Comm_split_type");
    MPI_Comm_rank(m_node, &m_local_rank);
    MPI_Comm_size(m_node, &m_local_size);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) {
      MPI_Comm_free(&m_node);
      MPI_Comm_free(&m_comm);
    }
  }

  int rank() const override { return m_rank; }
  int size() const override { return m_size; }
  int local_rank() const override { return m_local_rank; }
  int local_size() const override { return m_local_size; }
  std::string backend() const override { return "mpi"; }

  void allreduce_sum(void* data, std::size_t count, DType type) override {
    auto* bytes = static_cast<char*>(data);
    const std::size_t esize = dtype_size(type);
    for (std::size_t done = 0; done < count;) {
      const std::size_t n = std::min(kMaxChunk, count - done);
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, bytes + done * esize, static_cast<int>(n),
                              mpi_type(type), MPI_SUM, m_comm),
                "MPI_Allreduce");
      done += n;
    }
  }
  void allreduce_max(std::int64_t* data, std::size_t count) override {
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_INT64_T, MPI_MAX,
                            m_comm),
              "MPI_Allreduce(max)");
  }
  void broadcast(void* data, std::size_t bytes, int root) override {
    auto* p = static_cast<char*>(data);
    for (std::size_t done = 0; done < bytes;) {
      const std::size_t n = std::min(kMaxChunk, bytes - done);
      check_mpi(MPI_Bcast(p + done, static_cast<int>(n), MPI_BYTE, root, m_comm), "MPI_Bcast");
      done += n;
    }
  }
  void allgather(const void* in, std::size_t bytes, void* out) override {
    require(bytes < kMaxChunk, "allgather: more than 1 GiB per rank is not supported");
    check_mpi(MPI_Allgather(in, static_cast<int>(bytes), MPI_BYTE, out, static_cast<int>(bytes),
                            MPI_BYTE, m_comm),
              "MPI_Allgather");
  }
  std::vector<std::vector<std::uint8_t>> allgatherv(const void* in, std::size_t bytes) override {
    require(bytes < kMaxChunk, "allgatherv: more than 1 GiB per rank is not supported");
    int mine = static_cast<int>(bytes);
    std::vector<int> counts(m_size), displs(m_size);
    check_mpi(MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, m_comm),
              "MPI_Allgather(counts)");
    std::int64_t total = 0;
    for (int r = 0; r < m_size; ++r) {
      displs[r] = static_cast<int>(total);
      total += counts[r];
    }
    require(total < static_cast<std::int64_t>(kMaxChunk), "allgatherv: total exceeds 1 GiB");
    std::vector<std::uint8_t> all(static_cast<std::size_t>(total));
    check_mpi(MPI_Allgatherv(in, mine, MPI_BYTE, all.data(), counts.data(), displs.data(),
                             MPI_BYTE, m_comm),
              "MPI_Allgatherv");
    std::vector<std::vector<std::uint8_t>> out(m_size);
    for (int r = 0; r < m_size; ++r)
      out[r].assign(all.begin() + displs[r], all.begin() + displs[r] + counts[r]);
    return out;
  }
  void allgatherv_into(const void* in, void* out, const std::vector<std::size_t>& counts,
                       DType type) override {
    std::vector<int> n, at;
    int_layout(counts, "allgatherv", n, at);
    check_mpi(MPI_Allgatherv(in, n[m_rank], mpi_type(type), out, n.data(), at.data(),
                             mpi_type(type), m_comm),
              "MPI_Allgatherv");
  }
  void alltoallv(const void* send, const std::vector<std::size_t>& send_counts, void* recv,
                 const std::vector<std::size_t>& recv_counts, DType type) override {
    std::vector<int> sn, sat, rn, rat;
    int_layout(send_counts, "alltoallv", sn, sat);
    int_layout(recv_counts, "alltoallv", rn, rat);
    check_mpi(MPI_Alltoallv(send, sn.data(), sat.data(), mpi_type(type), recv, rn.data(),
                            rat.data(), mpi_type(type), m_comm),
              "MPI_Alltoallv");
  }
  void barrier() override { check_mpi(MPI_Barrier(m_comm), "MPI_Barrier"); }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  // Per-rank counts and displacements (elements, consecutive by rank) as MPI's ints.
  void int_layout(const std::vector<std::size_t>& counts, const char* what, std::vector<int>& n,
                  std::vector<int>& at) const {
    require(static_cast<int>(counts.size()) == m_size,
            std::string(what) + ": one count per rank expected");
    std::size_t total = 0;
    for (std::size_t c : counts) {
      n.push_back(static_cast<int>(c));
      at.push_back(static_cast<int>(total));
      total += c;
      require(total <= static_cast<std::size_t>(INT_MAX),
              std::string(what) + ": " + std::to_string(total) +
                  " elements exceed MPI's int counts (2^31 - 1); use more ranks");
    }
  }

  MPI_Comm m_comm = MPI_COMM_NULL;
  MPI_Comm m_node = MPI_COMM_NULL;
  int m_rank = 0, m_size = 1, m_local_rank = 0, m_local_size = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(int* argc, char*** argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    g_we_initialised = true;
  }
  return std::make_unique<MpiCommunicator>();
}

void finalize_mpi() {
  int initialised = 0, finalized = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalized);
  if (initialised && !finalized && g_we_initialised) MPI_Finalize();
}

}  // namespace fedgan::comm
