// The arithmetic of the robust aggregation rules on one block of coordinates, serial and
// LibTorch-free: the coordinate-wise median and β-trimmed mean (Yin et al. 2018, "Byzantine-
// robust distributed learning: towards optimal statistical rates"), Krum's scores and selection
// from a Gram matrix (Blanchard et al. 2017, "Machine learning with adversaries: Byzantine
// tolerant gradient descent"). The sharded, collective rules in federated/robust.hpp call these
// on each rank's shard; each coordinate's result depends only on that coordinate's values, so
// a sharded result equals the serial one bit for bit.
//
// Blocks are `count` rows (parties) × `cols` coordinates, float32, row-major. Values must be
// finite (non-finite updates are stopped or skipped before aggregation).
#pragma once

#include <cstdint>
#include <vector>

namespace fedgan::federated {

// Median of each column: the middle value; for an even count the mean of the two middle
// values, formed in float64 and rounded to float32 once. count ≥ 1.
void coordinate_median(const float* block, int count, std::int64_t cols, float* out);

// Mean of each column after dropping its `trim` smallest and `trim` largest values, summed in
// float64 in ascending order and rounded once. count > 2·trim.
void coordinate_trimmed_mean(const float* block, int count, std::int64_t cols, int trim,
                             float* out);

// Values dropped at each end by the β-trimmed mean of `parties` values: ⌊β·parties⌋.
int trimmed_count(double beta, int parties);

// Σ w_i·row_i / Σ w_i over the rows in `chosen` (ascending), in float64, rounded once.
void weighted_rows_mean(const float* block, std::int64_t cols, const std::vector<int>& chosen,
                        const std::vector<double>& weights, float* out);

// gram[i·count + j] += Σ_c block[i][c]·block[j][c], in float64 (float32 products are exact).
void accumulate_gram(const float* block, int count, std::int64_t cols, double* gram);

// Krum scores from the full Gram matrix: ‖x_i − x_j‖² = G_ii + G_jj − 2·G_ij, and score_i the
// sum of the count − f − 2 smallest distances from i to the others. Needs count > 2f + 2.
std::vector<double> krum_scores(const std::vector<double>& gram, int count, int f);

// The `m` rows with the lowest scores, ties broken by the lower party id; returned ascending.
std::vector<int> krum_select(const std::vector<double>& scores, const std::vector<int>& party,
                             int m);

// Median of a list (mean of the two middle values for an even count). Non-empty.
double median_of(std::vector<double> values);

}  // namespace fedgan::federated
