// Parallel evaluation of a generator (or any image source) against real statistics. The n
// samples are cut into fixed chunks (chunk c = samples [c*chunk, (c+1)*chunk)); rank c % R
// generates and embeds chunk c in one forward each, on one intra-op thread, and every rank
// merges the chunks' statistics and features in chunk order (see chunked.hpp). So FID, KID and
// precision/recall are identical to the last digit at any rank count and any thread count; they
// depend on the chunk size only through float32 rounding. Every rank returns the same
// EvalResult. A figure is only comparable with figures of the same sample count and evaluator,
// so both travel with it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fedgan/comm/communicator.hpp"
#include "fedgan/eval/chunked.hpp"
#include "fedgan/eval/feature_net.hpp"
#include "fedgan/eval/real_stats.hpp"
#include "fedgan/models/gan.hpp"

namespace fedgan::eval {

struct EvalOptions {
  std::int64_t n = 2000;   // generated samples (must exceed the feature dimension)
  std::uint64_t seed = 0;  // latent vectors (or noise, or the sample subset)
  int knn = 3;             // k of the precision/recall manifolds
  bool kid = true;         // KID and precision/recall need the gathered features
  bool precision_recall = true;
  std::int64_t chunk = kDefaultChunk;  // samples per generator / evaluator forward
};

struct EvalResult {
  std::string source;              // what was evaluated (checkpoint, samples file, noise)
  std::string real;                // the real dataset file
  std::string evaluator;           // evaluator file
  std::string evaluator_checksum;  // and its checksum
  int feature_dim = 0;
  std::int64_t n = 0;              // generated samples behind every figure
  std::int64_t n_real = 0;         // real samples behind FID-all
  std::int64_t n_real_subset = 0;  // real samples behind KID and precision/recall
  double fid_all = 0;              // generated vs all parties' pooled data
  double fid_avg = 0;              // mean over parties of FID vs that party's data
  std::vector<double> fid_parties;
  double kid = 0;  // NaN when not computed
  double precision = 0, recall = 0;
  int knn = 3;         // k of precision/recall
  double seconds = 0;  // wall time of the evaluation
};

// Images (float in [-1, 1], [end - begin, C, H, W]) of the global samples [begin, end), called
// once per chunk, from several threads at once (each with one intra-op thread): it must be
// thread-safe, and its samples must depend on the sample index only.
using ImageSource = std::function<torch::Tensor(std::int64_t begin, std::int64_t end)>;

// Collective. fedgan::Error on every rank for n not above the feature dimension (FID
// undefined), a chunk size below 1, images of the wrong shape (naming `source_name`), or a
// failing source.
EvalResult evaluate_images(comm::Communicator& comm, const ImageSource& source,
                           const std::string& source_name, Evaluator& evaluator,
                           const RealStats& real, const EvalOptions& options);

// Collective: samples from `generator` (eval mode, no gradients; its training flag is restored).
// Sample i's latent vector depends only on (seed, i), and conditional models get label
// i % num_classes; each chunk is generated in one forward, so the images are the same at any
// rank or thread count.
EvalResult evaluate_generator(comm::Communicator& comm, models::Generator& generator,
                              const models::ModelConfig& model, Evaluator& evaluator,
                              const RealStats& real, const EvalOptions& options,
                              const std::string& source_name = "generator");

// Images drawn uniformly from [-1, 1] (a sanity baseline: FID should be large).
ImageSource uniform_noise_source(const FeatureNetConfig& shape, std::uint64_t seed);
// A seeded random subset of n rows of a dataset file's /images (fedgan::Error naming the file
// when it has fewer than n rows or is not uint8 [N,C,H,W]). Its reads are serialised (HDF5 is
// not thread-safe).
ImageSource dataset_source(const std::string& path, std::int64_t n, std::uint64_t seed);

// A table with n and the evaluator beside every figure; and the same as one JSON object.
std::string format_table(const EvalResult& result);
std::string to_json(const EvalResult& result);

}  // namespace fedgan::eval
