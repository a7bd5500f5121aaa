// Real-data statistics and their cache (see include/fedgan/eval/real_stats.hpp).
#include "fedgan/eval/real_stats.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>

#include "fedgan/comm/collective.hpp"
#include "fedgan/comm/tensor_map.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/data/random.hpp"
#include "fedgan/data/shard_loader.hpp"
#include "fedgan/eval/chunked.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/io/hdf5.hpp"

namespace fedgan::eval {
namespace {

namespace fs = std::filesystem;

// The identity of a dataset file as the cache sees it.
struct FileKey {
  std::string path;
  std::int64_t size = 0, mtime = 0;
};

FileKey file_key(const std::string& path) {
  std::error_code ec;
  FileKey key;
  key.path = fs::weakly_canonical(fs::absolute(path), ec).string();
  if (ec) key.path = path;
  key.size = static_cast<std::int64_t>(fs::file_size(path, ec));
  key.mtime = static_cast<std::int64_t>(fs::last_write_time(path, ec).time_since_epoch().count());
  return key;
}

// Each party's rows (ascending); a file without /parties is one party of every row.
std::vector<std::vector<std::int64_t>> party_rows(const h5::File& f, std::int64_t rows) {
  std::vector<std::vector<std::int64_t>> parties;
  const auto count = f.exists("/parties") ? f.attr_int("/parties", "num_parties") : std::nullopt;
  if (!count) {
    parties.emplace_back(static_cast<std::size_t>(rows));
    for (std::int64_t i = 0; i < rows; ++i) parties[0][static_cast<std::size_t>(i)] = i;
    return parties;
  }
  for (std::int64_t k = 0; k < *count; ++k) {
    const std::string key = "/parties/" + std::to_string(k) + "/indices";
    require(f.exists(key), f.path() + ": missing dataset " + key);
    const auto idx = f.read(key).to(torch::kInt64).contiguous();
    parties.emplace_back(idx.data_ptr<std::int64_t>(), idx.data_ptr<std::int64_t>() + idx.numel());
  }
  return parties;
}

std::map<std::string, torch::Tensor> to_map(const RealStats& s) {
  std::map<std::string, torch::Tensor> m;
  const auto put = [&m](const std::string& prefix, const FeatureStats& st) {
    m[prefix + "/count"] = torch::full({1}, st.count, torch::kInt64);
    m[prefix + "/sum"] = st.sum;
    m[prefix + "/outer"] = st.outer;
  };
  put("all", s.all);
  for (std::size_t k = 0; k < s.parties.size(); ++k)
    put("parties/" + std::to_string(k), s.parties[k]);
  m["features"] = s.features;
  return m;
}

RealStats from_map(std::map<std::string, torch::Tensor>& m, const std::string& where) {
  const auto get = [&](const std::string& key) {
    const auto it = m.find(key);
    require(it != m.end(), where + ": real statistics lack " + key);
    return it->second;
  };
  const auto stats = [&](const std::string& prefix) {
    return FeatureStats{get(prefix + "/count").item<std::int64_t>(),
                        get(prefix + "/sum").to(torch::kFloat64),
                        get(prefix + "/outer").to(torch::kFloat64)};
  };
  RealStats s;
  s.all = stats("all");
  for (std::size_t k = 0; m.count("parties/" + std::to_string(k) + "/count"); ++k)
    s.parties.push_back(stats("parties/" + std::to_string(k)));
  s.features = get("features");
  return s;
}

// Reads the cache when it exists and matches; nullopt when absent or stale.
std::optional<RealStats> read_cache(const std::string& cache, const FileKey& key,
                                    const std::string& checksum, const RealStatsOptions& o) {
  if (!fs::exists(cache)) return std::nullopt;
  h5::File f(cache, h5::File::Mode::Read);
  const bool fresh =
      h5::has_format(f, kRealStatsFormat) &&
      f.attr_string("/", "dataset") == key.path && f.attr_int("/", "dataset_size") == key.size &&
      f.attr_int("/", "dataset_mtime") == key.mtime &&
      f.attr_string("/", "evaluator_checksum") == checksum &&
      f.attr_int("/", "max_features") == o.max_features && f.attr_int("/", "chunk") == o.chunk &&
      f.attr_int("/", "seed") == static_cast<std::int64_t>(o.seed);
  if (!fresh) {
    spdlog::info("eval: {} is stale (dataset, evaluator, format or options changed); recomputing",
                 cache);
    return std::nullopt;
  }
  std::map<std::string, torch::Tensor> m;
  for (const auto& key_name : {"all/count", "all/sum", "all/outer", "features"})
    m[key_name] = f.read(std::string("/") + key_name);
  if (f.is_group("/parties")) {
    for (const auto& k : f.children("/parties"))
      for (const char* part : {"count", "sum", "outer"})
        m["parties/" + k + "/" + part] = f.read("/parties/" + k + "/" + part);
  }
  return from_map(m, cache);
}

void write_cache(const std::string& cache, const FileKey& key, const RealStats& s,
                 const RealStatsOptions& o) {
  io::write_atomically(cache, [&](const std::string& temp) {
    h5::File f(temp, h5::File::Mode::Create);
    f.set_attr("/", "format", std::string(kRealStatsFormat));
    f.set_attr("/", "dataset", key.path);
    f.set_attr("/", "dataset_size", key.size);
    f.set_attr("/", "dataset_mtime", key.mtime);
    f.set_attr("/", "evaluator_checksum", s.evaluator_checksum);
    f.set_attr("/", "max_features", o.max_features);
    f.set_attr("/", "chunk", o.chunk);
    f.set_attr("/", "seed", static_cast<std::int64_t>(o.seed));
    for (const auto& [name, t] : to_map(s)) f.write("/" + name, t);
    f.close();
  });
}

}  // namespace

std::string default_cache_path(const std::string& dataset, const Evaluator& evaluator) {
  return dataset + ".stats-" + evaluator.checksum().substr(0, 8) + ".h5";
}

namespace {

// The work of compute_real_stats: chunk j of party k is the party's rows [j*chunk, (j+1)*chunk),
// in party order; `key[p]` is the place of pooled position p in the KID/PR subset (-1: not in it).
struct RealStatsPlan {
  struct Unit {
    std::size_t party;
    std::int64_t begin, end, pooled;  // rows of the party, pooled position of `begin`
  };
  std::unique_ptr<h5::File> file;
  std::vector<std::vector<std::int64_t>> rows;  // each party's rows of /images
  std::vector<std::int64_t> key;
  std::vector<Unit> units;
  std::int64_t subset_size = 0;
};

// Collective: every rank opens the dataset, checks it against the evaluator and plans the same
// units and subset (the first max_features positions of a seeded permutation of the pooled rows).
RealStatsPlan plan_real_stats(comm::Communicator& comm, const std::string& dataset,
                              Evaluator& evaluator, const RealStatsOptions& options) {
  RealStatsPlan plan;
  const auto chunk = options.chunk;
  comm::collective_try(comm, [&] {
    require(chunk >= 1,
            "real statistics: the chunk size must be positive, got " + std::to_string(chunk));
    plan.file = std::make_unique<h5::File>(dataset, h5::File::Mode::Read);
    auto& file = *plan.file;
    require(file.exists("/images"), dataset + ": missing dataset /images (expected uint8 [N,C,H,W])");
    const auto shape = file.shape("/images");
    require(file.dtype("/images") == torch::kUInt8 && shape.size() == 4,
            dataset + ": /images must be uint8 [N,C,H,W] (the schema `fedgan prepare` writes)");
    evaluator.check_image_shape(shape[1], shape[2], shape[3], dataset);
    plan.rows = party_rows(file, shape[0]);
    std::int64_t total = 0;
    for (const auto& r : plan.rows) total += static_cast<std::int64_t>(r.size());
    std::vector<std::int64_t> perm(static_cast<std::size_t>(total));
    for (std::int64_t i = 0; i < total; ++i) perm[static_cast<std::size_t>(i)] = i;
    data::Rng rng(data::derive_seed(options.seed, 0x7265616c));
    rng.shuffle(perm);
    plan.subset_size = std::min(options.max_features, total);
    plan.key.assign(static_cast<std::size_t>(total), -1);
    for (std::int64_t i = 0; i < plan.subset_size; ++i)
      plan.key[static_cast<std::size_t>(perm[i])] = i;
    std::int64_t pooled = 0;
    for (std::size_t k = 0; k < plan.rows.size(); ++k) {
      const auto len = static_cast<std::int64_t>(plan.rows[k].size());
      for (std::int64_t b = 0; b < len; b += chunk)
        plan.units.push_back({k, b, std::min(len, b + chunk), pooled + b});
      pooled += len;
    }
  });
  return plan;
}

// One unit's bytes: its feature statistics, then the subset places and features of its rows
// that belong to the KID/PR subset.
UnitBytes embed_unit(const RealStatsPlan& plan, std::int64_t u, Evaluator& evaluator,
                     std::mutex& h5_mutex) {
  const auto& unit = plan.units[static_cast<std::size_t>(u)];
  const auto& party = plan.rows[unit.party];
  const std::vector<std::int64_t> chunk_rows(party.begin() + unit.begin, party.begin() + unit.end);
  torch::Tensor images;
  {
    const std::lock_guard<std::mutex> lock(h5_mutex);
    images = plan.file->read_rows("/images", chunk_rows);
  }
  const auto feats = evaluator.embed(data::to_unit_range(images)).to(torch::kCPU);
  std::vector<std::int64_t> subset_keys, subset_rows;
  for (std::int64_t i = unit.begin; i < unit.end; ++i) {
    const auto k = plan.key[static_cast<std::size_t>(unit.pooled + i - unit.begin)];
    if (k < 0) continue;
    subset_keys.push_back(k);
    subset_rows.push_back(i - unit.begin);
  }
  UnitBytes bytes;
  FeatureStats::of(feats).append_to(bytes);
  const auto m = static_cast<std::int64_t>(subset_keys.size());
  append_tensor(bytes, torch::full({1}, m, torch::kInt64));
  append_tensor(bytes, torch::tensor(subset_keys, torch::kInt64));
  append_tensor(bytes, feats.index_select(0, torch::tensor(subset_rows, torch::kInt64)));
  return bytes;
}

}  // namespace

RealStats compute_real_stats(comm::Communicator& comm, const std::string& dataset,
                             Evaluator& evaluator, const RealStatsOptions& options) {
  const auto d = evaluator.feature_dim();
  const auto plan = plan_real_stats(comm, dataset, evaluator, options);
  RealStats out;
  out.dataset = dataset;
  out.evaluator_checksum = evaluator.checksum();
  out.features = torch::zeros({plan.subset_size, d}, torch::kFloat32);
  std::vector<FeatureStats> parties;
  for (std::size_t k = 0; k < plan.rows.size(); ++k) parties.push_back(FeatureStats::zeros(d));
  // The rank's threads work on whole chunks, each on one intra-op thread: the statistics do not
  // depend on the thread or rank count.
  const int workers = at::get_num_threads();
  SingleThreadScope single_thread;
  EvalModeScope eval_mode(*evaluator.net());
  std::mutex h5_mutex;  // HDF5 (without its thread-safe build) takes one thread at a time
  for_each_unit_in_order(
      comm, static_cast<std::int64_t>(plan.units.size()), workers,
      [&](std::int64_t u) { return embed_unit(plan, u, evaluator, h5_mutex); },
      [&](std::int64_t u, const UnitBytes& bytes) {
        const auto& unit = plan.units[static_cast<std::size_t>(u)];
        std::size_t offset = 0;
        parties[unit.party].merge(FeatureStats::read_from(bytes, offset, unit.end - unit.begin, d));
        const auto m = read_tensor(bytes, offset, {1}, torch::kInt64).item<std::int64_t>();
        const auto keys = read_tensor(bytes, offset, {m}, torch::kInt64);
        out.features.index_copy_(0, keys, read_tensor(bytes, offset, {m, d}, torch::kFloat32));
      });
  out.all = FeatureStats::zeros(d);
  for (const auto& p : parties) out.all.merge(p);
  out.parties = std::move(parties);
  return out;
}

RealStats load_or_compute_real_stats(comm::Communicator& comm, const std::string& dataset,
                                     Evaluator& evaluator, const RealStatsOptions& options) {
  const std::string cache =
      options.cache_path.empty() ? default_cache_path(dataset, evaluator) : options.cache_path;
  const auto checksum = evaluator.checksum();
  std::map<std::string, torch::Tensor> tensors;
  std::int64_t hit = 0;
  if (options.use_cache && comm.is_root()) {
    try {
      if (auto cached = read_cache(cache, file_key(dataset), checksum, options)) {
        tensors = to_map(*cached);
        hit = 1;
      }
    } catch (const std::exception& e) {
      spdlog::warn("eval: ignoring unreadable cache {}: {}", cache, e.what());
    }
  }
  comm.broadcast(&hit, sizeof hit, 0);
  if (hit) {
    comm::broadcast_tensors(comm, tensors, 0);
    auto s = from_map(tensors, cache);
    s.dataset = dataset;
    s.evaluator_checksum = checksum;
    s.from_cache = true;
    spdlog::info("eval: real statistics of {} from cache {}", dataset, cache);
    return s;
  }
  auto s = compute_real_stats(comm, dataset, evaluator, options);
  if (options.use_cache && comm.is_root()) {
    try {
      write_cache(cache, file_key(dataset), s, options);
      spdlog::info("eval: cached real statistics of {} in {}", dataset, cache);
    } catch (const std::exception& e) {
      spdlog::warn("eval: cannot write the cache {}: {} (continuing without it)", cache, e.what());
    }
  }
  return s;
}

}  // namespace fedgan::eval
