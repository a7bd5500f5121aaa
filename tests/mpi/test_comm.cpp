// Collectives give exact results at any rank count; errors are agreed by every rank.
#include <catch2/catch.hpp>

#include "fedgan/comm/collective.hpp"
#include "mpi_fixture.hpp"

using namespace fedgan;
using fedgan::testing::world;

TEST_CASE("allreduce_sum is exact for float, double and int64", "[mpi]") {
  auto& comm = world();
  const int R = comm.size(), r = comm.rank();
  // Small integers are exact in float, so the sum must match bit for bit.
  std::vector<float> f(1000);
  std::vector<double> d(1000);
  std::vector<std::int64_t> i(1000);
  for (int k = 0; k < 1000; ++k) {
    f[k] = static_cast<float>(k + r);
    d[k] = 0.5 * k * (r + 1);
    i[k] = (std::int64_t{1} << 40) + k * r;
  }
  comm.allreduce_sum(f.data(), f.size());
  comm.allreduce_sum(d.data(), d.size());
  comm.allreduce_sum(i.data(), i.size());
  const double rsum = R * (R - 1) / 2.0;
  for (int k = 0; k < 1000; ++k) {
    REQUIRE(f[k] == static_cast<float>(k * R + rsum));
    REQUIRE(d[k] == 0.5 * k * (rsum + R));
    REQUIRE(i[k] == R * (std::int64_t{1} << 40) + k * static_cast<std::int64_t>(rsum));
  }
  auto t = torch::full({7, 3}, static_cast<float>(r + 1));
  comm.allreduce_sum(t);
  CHECK(t.eq(static_cast<float>(R * (R + 1) / 2)).all().item<bool>());
}

TEST_CASE("broadcast from every root", "[mpi]") {
  auto& comm = world();
  for (int root = 0; root < comm.size(); ++root) {
    auto t = comm.rank() == root ? torch::arange(100, torch::kFloat64) * root
                                 : torch::zeros({100}, torch::kFloat64);
    comm.broadcast(t, root);
    CHECK(torch::equal(t, torch::arange(100, torch::kFloat64) * root));
    std::string s = comm.rank() == root ? "hello from " + std::to_string(root) : "";
    comm.broadcast(s, root);
    CHECK(s == "hello from " + std::to_string(root));
  }
}

TEST_CASE("allgather with fixed and variable sizes", "[mpi]") {
  auto& comm = world();
  const int R = comm.size();
  std::int64_t mine[2] = {comm.rank(), 10 * comm.rank()};
  std::vector<std::int64_t> all(2 * R);
  comm.allgather(mine, sizeof(mine), all.data());
  for (int r = 0; r < R; ++r) {
    CHECK(all[2 * r] == r);
    CHECK(all[2 * r + 1] == 10 * r);
  }
  // Rank r sends r+1 copies of 'a'+r (rank 0 also tests a one-byte message).
  auto texts = comm.allgather(std::string(comm.rank() + 1, static_cast<char>('a' + comm.rank())));
  REQUIRE(static_cast<int>(texts.size()) == R);
  for (int r = 0; r < R; ++r) CHECK(texts[r] == std::string(r + 1, static_cast<char>('a' + r)));
  // Empty contributions are allowed.
  auto empty = comm.allgather(std::string());
  for (auto& e : empty) CHECK(e.empty());
}

TEST_CASE("local rank and size describe this node", "[mpi]") {
  auto& comm = world();
  CHECK(comm.local_rank() >= 0);
  CHECK(comm.local_rank() < comm.local_size());
  std::int64_t local = comm.local_size();
  comm.allreduce_max(&local, 1);
  CHECK(local <= comm.size());
}

TEST_CASE("agree_ok: one rank's failure reaches every rank with its message", "[mpi]") {
  auto& comm = world();
  const int failing = comm.size() - 1;
  bool threw = false;
  try {
    comm::collective_try(comm, [&] {
      if (comm.rank() == failing) throw Error("shard file missing");
    });
  } catch (const Error& e) {
    threw = true;
    CHECK(e.collective());
    CHECK(std::string(e.what()).find("shard file missing") != std::string::npos);
    if (comm.size() > 1)
      CHECK(std::string(e.what()).find("rank " + std::to_string(failing)) != std::string::npos);
  }
  CHECK(threw);
  // The job goes on afterwards: all ranks still meet in collectives.
  CHECK_NOTHROW(comm.agree_ok(true, ""));
  std::int64_t one = 1;
  comm.allreduce_sum(&one, 1);
  CHECK(one == comm.size());
}

TEST_CASE("run_on_root: rank 0 works, every rank learns its failure", "[mpi]") {
  auto& comm = world();
  std::int64_t ran = 0;
  comm::run_on_root(comm, [&] { ran += 1; });
  comm.allreduce_sum(&ran, 1);
  CHECK(ran == 1);  // rank 0 only
  bool threw = false;
  try {
    comm::run_on_root(comm, [&] { throw Error("disk full writing latest.h5"); });
  } catch (const Error& e) {
    threw = true;
    CHECK(e.collective());
    CHECK(std::string(e.what()).find("disk full writing latest.h5") != std::string::npos);
  }
  CHECK(threw);  // on every rank, not only on rank 0
}

TEST_CASE("alltoallv and allgatherv_into move variable counts exactly", "[mpi]") {
  auto& comm = world();
  const int R = comm.size(), me = comm.rank();
  // Rank s sends s + d + 1 floats to rank d, each 100·s + d + i/8 (exact in float32); rank 0
  // sends nothing to itself when R > 1 to test an empty block.
  auto count = [&](int s, int d) -> std::size_t {
    return R > 1 && s == 0 && d == 0 ? 0 : static_cast<std::size_t>(s + d + 1);
  };
  std::vector<std::size_t> send_counts(R), recv_counts(R);
  std::vector<float> send;
  for (int d = 0; d < R; ++d) {
    send_counts[d] = count(me, d);
    recv_counts[d] = count(d, me);
    for (std::size_t i = 0; i < send_counts[d]; ++i)
      send.push_back(static_cast<float>(100 * me + d + i / 8.0));
  }
  std::size_t total = 0;
  for (auto c : recv_counts) total += c;
  std::vector<float> recv(total, -1.0f);
  comm.alltoallv(send.data(), send_counts, recv.data(), recv_counts, comm::DType::Float32);
  std::size_t at = 0;
  for (int s = 0; s < R; ++s)
    for (std::size_t i = 0; i < recv_counts[s]; ++i)
      CHECK(recv[at++] == static_cast<float>(100 * s + me + i / 8.0));

  // allgatherv_into: rank r gives r + 2 doubles r + i/4.
  std::vector<std::size_t> counts(R);
  for (int r = 0; r < R; ++r) counts[r] = static_cast<std::size_t>(r + 2);
  std::vector<double> mine(counts[me]);
  for (std::size_t i = 0; i < mine.size(); ++i) mine[i] = me + i / 4.0;
  std::size_t n = 0;
  for (auto c : counts) n += c;
  std::vector<double> all(n);
  comm.allgatherv_into(mine.data(), all.data(), counts, comm::DType::Float64);
  at = 0;
  for (int r = 0; r < R; ++r)
    for (std::size_t i = 0; i < counts[r]; ++i) CHECK(all[at++] == r + i / 4.0);
}

TEST_CASE("allreduce_max_fields: each named field becomes its maximum over ranks", "[mpi]") {
  auto& comm = world();
  struct Flags {
    std::int64_t a = 0, b = 0, c = 0;
  };
  static constexpr std::int64_t Flags::*const kFields[] = {&Flags::c, &Flags::a};  // b not listed
  Flags f;
  f.a = comm.rank();
  f.b = 100 + comm.rank();
  f.c = comm.rank() == 0 ? 7 : -comm.rank();
  comm::allreduce_max_fields(comm, f, kFields);
  CHECK(f.a == comm.size() - 1);
  CHECK(f.b == 100 + comm.rank());  // untouched
  CHECK(f.c == 7);
}
