// Parallel evaluation of generated images (see include/fedgan/eval/evaluate.hpp).
#include "fedgan/eval/evaluate.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <sstream>

#include "fedgan/comm/collective.hpp"
#include "fedgan/core/error.hpp"
#include "fedgan/core/torch_compat.hpp"
#include "fedgan/data/random.hpp"
#include "fedgan/data/shard_loader.hpp"
#include "fedgan/eval/kid.hpp"
#include "fedgan/eval/precision_recall.hpp"
#include "fedgan/io/hdf5.hpp"

namespace fedgan::eval {
namespace {

// Latent vectors come in blocks seeded by (seed, block), so sample i's z is the same whichever
// rank or chunk draws it.
constexpr std::int64_t kLatentBlock = 256;

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string json_number(double v) {
  return std::isfinite(v) ? fmt::format("{:.17g}", v) : std::string("null");
}

}  // namespace

namespace {

// Every rank reaches the same verdict on these, so the errors are collective.
void check_eval_inputs(const EvalOptions& o, std::int64_t d, const Evaluator& evaluator,
                       const RealStats& real) {
  if (o.n <= d)
    throw Error("--n " + std::to_string(o.n) +
                    ": FID is undefined with no more samples than the "
                    "evaluator's " +
                    std::to_string(d) +
                    " features (the covariance is singular); use "
                    "--n " +
                    std::to_string(d + 1) + " or more (2000+ for comparable figures)",
                true);
  if (o.chunk < 1)
    throw Error("eval: the chunk size must be positive, got " + std::to_string(o.chunk), true);
  if (real.evaluator_checksum != evaluator.checksum() || real.all.dim() != d)
    throw Error("eval: the real statistics of " + real.dataset + " come from another evaluator (" +
                    real.evaluator_checksum + ", not " + evaluator.checksum() + ")",
                true);
}

struct GeneratedFeatures {
  FeatureStats stats;
  torch::Tensor features;  // [n, d] in sample order, when KID or P/R need them
};

// The generated images' feature statistics, chunk by chunk over every rank's threads; with
// `keep`, every rank ends with every feature (n x d floats) in sample order.
GeneratedFeatures embed_generated(comm::Communicator& comm, const ImageSource& source,
                                  const std::string& source_name, Evaluator& evaluator,
                                  const EvalOptions& o, bool keep, int workers) {
  const std::int64_t d = evaluator.feature_dim();
  const auto range = [&o](std::int64_t c) {
    return std::pair<std::int64_t, std::int64_t>{c * o.chunk, std::min(o.n, (c + 1) * o.chunk)};
  };
  GeneratedFeatures out{FeatureStats::zeros(d),
                        keep ? torch::empty({o.n, d}, torch::kFloat32) : torch::Tensor()};
  for_each_unit_in_order(
      comm, chunk_count(o.n, o.chunk), workers,
      [&](std::int64_t c) {
        const auto [b, e] = range(c);
        const auto images = source(b, e);
        require(images.dim() == 4 && images.size(0) == e - b,
                source_name + ": expected " + std::to_string(e - b) + " images [n,C,H,W], got " +
                    c10::str(images.sizes()));
        evaluator.check_image_shape(images.size(1), images.size(2), images.size(3), source_name);
        const auto f = evaluator.embed(images);
        UnitBytes bytes;
        FeatureStats::of(f).append_to(bytes);
        if (keep) append_tensor(bytes, f);
        return bytes;
      },
      [&](std::int64_t c, const UnitBytes& bytes) {
        const auto [b, e] = range(c);
        std::size_t offset = 0;
        out.stats.merge(FeatureStats::read_from(bytes, offset, e - b, d));
        if (keep)
          out.features.narrow(0, b, e - b)
              .copy_(read_tensor(bytes, offset, {e - b, d}, torch::kFloat32));
      });
  if (!torch::isfinite(out.stats.outer).all().item<bool>())
    throw Error(source_name +
                    ": the generated images give non-finite features (NaN or Inf "
                    "images?); FID is undefined",
                true);
  return out;
}

// FID against the pooled real data and each party's (FID-avg: their mean).
void fill_fids(EvalResult& r, const FeatureStats& stats, const RealStats& real, std::int64_t d,
               comm::Communicator& comm) {
  r.fid_all = frechet_distance(stats, real.all, "generated", "real (" + real.dataset + ")");
  const auto mu = stats.mean(), sigma = stats.covariance();
  for (std::size_t k = 0; k < real.parties.size(); ++k) {
    const auto& p = real.parties[k];
    if (p.count < 2) continue;  // a party too small for a covariance has no FID
    if (p.count <= d && comm.is_root())
      spdlog::warn(
          "eval: party {} has {} samples, not above the {} features: its FID is a poor "
          "estimate",
          k, p.count, d);
    r.fid_parties.push_back(frechet_distance(mu, sigma, p.mean(), p.covariance()));
  }
  r.fid_avg = r.fid_parties.empty()
                  ? std::numeric_limits<double>::quiet_NaN()
                  : std::accumulate(r.fid_parties.begin(), r.fid_parties.end(), 0.0) /
                        static_cast<double>(r.fid_parties.size());
}

}  // namespace

EvalResult evaluate_images(comm::Communicator& comm, const ImageSource& source,
                           const std::string& source_name, Evaluator& evaluator,
                           const RealStats& real, const EvalOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t d = evaluator.feature_dim();
  check_eval_inputs(o, d, evaluator, real);
  // The rank's threads work on whole chunks; all arithmetic runs on one intra-op thread, so
  // no figure depends on the thread or rank count.
  const int workers = at::get_num_threads();
  SingleThreadScope single_thread;
  EvalModeScope eval_mode(*evaluator.net());
  const bool keep = o.kid || o.precision_recall;
  const auto generated = embed_generated(comm, source, source_name, evaluator, o, keep, workers);

  EvalResult r;
  r.source = source_name;
  r.real = real.dataset;
  r.evaluator = evaluator.path();
  r.evaluator_checksum = evaluator.checksum();
  r.feature_dim = static_cast<int>(d);
  r.knn = o.knn;
  r.n = generated.stats.count;
  r.n_real = real.all.count;
  fill_fids(r, generated.stats, real, d, comm);
  r.kid = r.precision = r.recall = std::numeric_limits<double>::quiet_NaN();
  if (keep) {
    r.n_real_subset = std::min<std::int64_t>(o.n, real.features.size(0));
    const auto real_subset = real.features.narrow(0, 0, r.n_real_subset);
    if (o.kid) r.kid = kernel_inception_distance(generated.features, real_subset, workers);
    if (o.precision_recall) {
      const auto pr = precision_recall(real_subset, generated.features, o.knn, workers);
      r.precision = pr.precision;
      r.recall = pr.recall;
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

EvalResult evaluate_generator(comm::Communicator& comm, models::Generator& generator,
                              const models::ModelConfig& model, Evaluator& evaluator,
                              const RealStats& real, const EvalOptions& o,
                              const std::string& source_name) {
  EvalModeScope eval_mode(generator);
  const auto params = generator.parameters();
  const auto device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  const ImageSource source = [&](std::int64_t begin, std::int64_t end) {
    std::vector<torch::Tensor> z;
    for (std::int64_t block = begin / kLatentBlock; block * kLatentBlock < end; ++block) {
      auto gen = compat::make_cpu_generator(
          data::derive_seed(o.seed, 0x6c6174656e74, static_cast<std::uint64_t>(block)));
      const auto all = torch::randn({kLatentBlock, model.latent_dim}, gen);
      const auto from = std::max(begin, block * kLatentBlock) - block * kLatentBlock;
      const auto to = std::min(end, (block + 1) * kLatentBlock) - block * kLatentBlock;
      z.push_back(all.narrow(0, from, to - from));
    }
    torch::Tensor labels;
    if (model.num_classes > 0)
      labels = (torch::arange(begin, end, torch::kInt64) % model.num_classes).to(device);
    return generator.forward(torch::cat(z).to(device), labels);
  };
  return evaluate_images(comm, source, source_name, evaluator, real, o);
}

ImageSource uniform_noise_source(const FeatureNetConfig& shape, std::uint64_t seed) {
  return [shape, seed](std::int64_t begin, std::int64_t end) {
    std::vector<torch::Tensor> images;
    for (std::int64_t i = begin; i < end; ++i) {
      auto gen = compat::make_cpu_generator(
          data::derive_seed(seed, 0x6e6f697365, static_cast<std::uint64_t>(i)));
      images.push_back(torch::rand({shape.channels, shape.image_size, shape.image_size}, gen) * 2 -
                       1);
    }
    return torch::stack(images);
  };
}

ImageSource dataset_source(const std::string& path, std::int64_t n, std::uint64_t seed) {
  h5::File f(path, h5::File::Mode::Read);
  require(f.exists("/images"), path + ": missing dataset /images (expected uint8 [N,C,H,W])");
  const auto shape = f.shape("/images");
  require(f.dtype("/images") == torch::kUInt8 && shape.size() == 4,
          path +
              ": /images must be uint8 [N,C,H,W] (the schema `fedgan prepare` and "
              "`fedgan sample` write)");
  require(shape[0] >= n, path + ": holds " + std::to_string(shape[0]) + " images, fewer than --n " +
                             std::to_string(n));
  std::vector<std::int64_t> rows(static_cast<std::size_t>(shape[0]));
  std::iota(rows.begin(), rows.end(), std::int64_t{0});
  data::Rng rng(data::derive_seed(seed, 0x73616d706c65));
  rng.shuffle(rows);
  rows.resize(static_cast<std::size_t>(n));
  // HDF5 (without its thread-safe build) must not be entered by two threads at once.
  auto lock = std::make_shared<std::mutex>();
  return [path, rows, lock](std::int64_t begin, std::int64_t end) {
    torch::Tensor images;
    {
      const std::lock_guard<std::mutex> guard(*lock);
      h5::File file(path, h5::File::Mode::Read);
      images = file.read_rows("/images",
                              std::vector<std::int64_t>(rows.begin() + begin, rows.begin() + end));
    }
    return data::to_unit_range(images);
  };
}

std::string format_table(const EvalResult& r) {
  const std::string ev = std::filesystem::path(r.evaluator).filename().string() + "#" +
                         r.evaluator_checksum.substr(0, 8);
  std::ostringstream s;
  s << fmt::format("{} vs {}: {} generated samples, evaluator {} ({}, {} features), {:.1f} s\n",
                   r.source, r.real, r.n, r.evaluator, r.evaluator_checksum, r.feature_dim,
                   r.seconds);
  s << fmt::format("{:<10} {:>12} {:>7} {:>8}  {}\n", "metric", "value", "n_gen", "n_real",
                   "evaluator");
  const auto row = [&](const std::string& name, double v, std::int64_t n_real,
                       const std::string& note = "") {
    if (!std::isfinite(v)) return;
    s << fmt::format("{:<10} {:>12.5g} {:>7} {:>8}  {}{}\n", name, v, r.n, n_real, ev, note);
  };
  row("FID-all", r.fid_all, r.n_real);
  row("FID-avg", r.fid_avg, r.n_real,
      fmt::format("  (mean over {} part{})", r.fid_parties.size(),
                  r.fid_parties.size() == 1 ? "y" : "ies"));
  row("KID", r.kid, r.n_real_subset);
  row("precision", r.precision, r.n_real_subset, fmt::format("  (k={})", r.knn));
  row("recall", r.recall, r.n_real_subset, fmt::format("  (k={})", r.knn));
  return s.str();
}

std::string to_json(const EvalResult& r) {
  std::string parties;
  for (std::size_t k = 0; k < r.fid_parties.size(); ++k)
    parties += (k ? ", " : "") + json_number(r.fid_parties[k]);
  return fmt::format(
      "{{\"source\": {}, \"real\": {}, \"evaluator\": {}, \"evaluator_checksum\": {}, "
      "\"feature_dim\": {}, \"n\": {}, \"n_real\": {}, \"n_real_subset\": {}, \"fid_all\": {}, "
      "\"fid_avg\": {}, \"fid_parties\": [{}], \"kid\": {}, \"precision\": {}, \"recall\": {}, "
      "\"seconds\": {}}}",
      json_string(r.source), json_string(r.real), json_string(r.evaluator),
      json_string(r.evaluator_checksum), r.feature_dim, r.n, r.n_real, r.n_real_subset,
      json_number(r.fid_all), json_number(r.fid_avg), parties, json_number(r.kid),
      json_number(r.precision), json_number(r.recall), json_number(r.seconds));
}

}  // namespace fedgan::eval
