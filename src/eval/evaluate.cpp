// Parallel evaluation of generated images (see include/fedgan/eval/evaluate.hpp).
#include "fedgan/eval/evaluate.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
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
// rank draws it.
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

EvalResult evaluate_images(Communicator& comm, const ImageSource& source,
                           const std::string& source_name, Evaluator& evaluator,
                           const RealStats& real, const EvalOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t d = evaluator.feature_dim();
  // Every rank reaches the same verdict on these, so the errors are collective.
  if (o.n <= d)
    throw Error("--n " + std::to_string(o.n) +
                    ": FID is undefined with no more samples than the "
                    "evaluator's " +
                    std::to_string(d) +
                    " features (the covariance is singular); use "
                    "--n " +
                    std::to_string(d + 1) + " or more (2000+ for comparable figures)",
                true);
  if (real.evaluator_checksum != evaluator.checksum() || real.all.dim() != d)
    throw Error("eval: the real statistics of " + real.dataset + " come from another evaluator (" +
                    real.evaluator_checksum + ", not " + evaluator.checksum() + ")",
                true);
  const std::int64_t begin = o.n * comm.rank() / comm.size();
  const std::int64_t end = o.n * (comm.rank() + 1) / comm.size();
  auto stats = FeatureStats::zeros(d);
  std::vector<torch::Tensor> local;
  collective_try(comm, [&] {
    for (std::int64_t b = begin; b < end; b += o.batch) {
      const auto e = std::min(end, b + o.batch);
      const auto images = source(b, e);
      require(images.dim() == 4 && images.size(0) == e - b,
              source_name + ": expected " + std::to_string(e - b) + " images [n,C,H,W], got " +
                  c10::str(images.sizes()));
      const auto f = evaluator.features(images, source_name);
      stats.add(f);
      if (o.kid || o.precision_recall) local.push_back(f.contiguous());
    }
  });
  stats.allreduce(comm);
  if (!torch::isfinite(stats.outer).all().item<bool>())
    throw Error(source_name +
                    ": the generated images give non-finite features (NaN or Inf "
                    "images?); FID is undefined",
                true);

  EvalResult r;
  r.source = source_name;
  r.real = real.dataset;
  r.evaluator = evaluator.path();
  r.evaluator_checksum = evaluator.checksum();
  r.feature_dim = static_cast<int>(d);
  r.knn = o.knn;
  r.n = stats.count;
  r.n_real = real.all.count;
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
  r.kid = r.precision = r.recall = std::numeric_limits<double>::quiet_NaN();
  if (o.kid || o.precision_recall) {
    // Every rank gathers every feature (n x d floats) and computes the same figures.
    const auto mine = local.empty() ? torch::zeros({0, d}) : torch::cat(local).contiguous();
    const auto parts = comm.allgatherv(mine.data_ptr(), mine.numel() * sizeof(float));
    std::vector<torch::Tensor> all;
    for (const auto& p : parts) {
      const auto rows = static_cast<std::int64_t>(p.size() / sizeof(float)) / d;
      all.push_back(
          torch::from_blob(const_cast<std::uint8_t*>(p.data()), {rows, d}, torch::kFloat32)
              .clone());
    }
    const auto generated = torch::cat(all);
    r.n_real_subset = std::min<std::int64_t>(o.n, real.features.size(0));
    const auto real_subset = real.features.narrow(0, 0, r.n_real_subset);
    if (o.kid) r.kid = kernel_inception_distance(generated, real_subset);
    if (o.precision_recall) {
      const auto pr = precision_recall(real_subset, generated, o.knn);
      r.precision = pr.precision;
      r.recall = pr.recall;
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

EvalResult evaluate_generator(Communicator& comm, Generator& generator, const ModelConfig& model,
                              Evaluator& evaluator, const RealStats& real, const EvalOptions& o,
                              const std::string& source_name) {
  const bool was_training = generator.is_training();
  generator.eval();
  torch::NoGradGuard no_grad;
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
      labels = torch::arange(begin, end, torch::kInt64) % model.num_classes;
    return generator.forward(torch::cat(z), labels);
  };
  try {
    auto r = evaluate_images(comm, source, source_name, evaluator, real, o);
    generator.train(was_training);
    return r;
  } catch (...) {
    generator.train(was_training);
    throw;
  }
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
  return [path, rows](std::int64_t begin, std::int64_t end) {
    h5::File file(path, h5::File::Mode::Read);
    return data::to_unit_range(file.read_rows(
        "/images", std::vector<std::int64_t>(rows.begin() + begin, rows.begin() + end)));
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
