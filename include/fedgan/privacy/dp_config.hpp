// Client-level DP-FedAvg settings (McMahan et al. 2018; adaptive clipping: Andrew et al. 2021)
// and the pieces of it that need no LibTorch: their checks, the fixed denominator, the adaptive
// clip update and the guarantee line. (Poisson party sampling: federated/participation.hpp.)
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "fedgan/core/choice.hpp"

namespace fedgan::privacy {

// Where the Gaussian noise of the sum comes from.
enum class NoiseMode {
  Central,      // one seeded draw N(0, z²C²) added once to the sum (trusted aggregator)
  Distributed,  // each participant adds N(0, z²C²/|S_t|): the sum carries the full noise and no
                // single party or rank sees a noise-free sum (pairs with secure aggregation)
};

// How clipped updates are weighted; the denominator never depends on who took part.
enum class DpWeighting {
  Uniform,  // weight 1 each; divide by m = q·P, the expected number of participants
  FixedN,   // weight n_k / max n (≤ 1, so the sensitivity stays C); divide by q·Σ_k n_k / max n
};

// --dp-noise: central | distributed; --dp-weighting: uniform | fixed-n.
const ChoiceTable<Choice<NoiseMode>>& noise_modes();
const ChoiceTable<Choice<DpWeighting>>& dp_weightings();

struct DpConfig {
  bool enabled = false;                                   // --dp-clip given
  double clip = std::numeric_limits<double>::infinity();  // C (the initial C when adaptive)
  double noise_multiplier = 1.0;                          // z (of the whole round's mechanism)
  NoiseMode noise = NoiseMode::Central;
  DpWeighting weighting = DpWeighting::Uniform;
  double delta = 0;           // 0: 1/(10·parties)
  double epsilon_budget = 0;  // 0: none; else stop before the round that would exceed it
  // Adaptive clipping (Andrew et al. 2021): off when quantile is 0.
  double clip_quantile = 0;     // γ, target fraction of updates under the clip
  double clip_lr = 0.2;         // η, geometric step of C
  double clip_count_stddev = 0; // σ_b of the noised clipped count; 0: m/20 (the paper's choice)

  bool adaptive() const { return clip_quantile > 0; }
};

// Everything a run needs beyond DpConfig, resolved once at the start (same on every rank).
struct DpPlan {
  DpConfig config;
  int parties = 0;
  double q = 1;                 // sampling rate = --participation
  double delta = 0;             // resolved
  double expected_participants = 0;  // m = q·P
  double denominator = 0;       // m (uniform) or q·Σ_k w_k (fixed-n)
  std::vector<double> weights;  // w_k per party (1, or n_k / max n)
  double count_stddev = 0;      // σ_b (adaptive clipping)
  double update_noise_multiplier = 0;  // z_Δ: z itself, or (z⁻² − (2σ_b)⁻²)^(-1/2) adaptive
};

// Checks the settings against the run (messages name the flags) and resolves δ, the weights and
// the denominator. `shard_sizes` holds n_k of every party (all ranks know them from the file).
DpPlan make_dp_plan(const DpConfig& config, double participation,
                    const std::vector<std::int64_t>& shard_sizes);

// Andrew et al. 2021, Alg. 1: C ← C·exp(−η(b̄ − γ)), b̄ = the noised fraction of updates whose
// norm was at most C: (Σ(b_k − ½) + N(0, σ_b²))/m + ½ (centred, so that the count's
// sensitivity is ½). `noised_centred_count` is Σ(b_k − ½) plus its noise.
double next_adaptive_clip(double clip, double noised_centred_count, const DpPlan& plan);

// "(ε, δ)-DP at the party level for N rounds, q = …, z = …, C = …" (plus the classic bound).
std::string guarantee_line(const DpPlan& plan, int rounds, double epsilon, double order,
                           double classic_epsilon, double clip);

std::string to_string(NoiseMode mode);
std::string to_string(DpWeighting weighting);

}  // namespace fedgan::privacy
