// Robust rules on one block of coordinates (see include/fedgan/federated/aggregation/robust_rules.hpp).
#include "fedgan/federated/aggregation/robust_rules.hpp"

#include <algorithm>
#include <numeric>
#include <string>

#include "fedgan/core/error.hpp"

namespace fedgan::federated {
namespace {

// Calls fn(column, values) for each column with that column's `count` values gathered
// contiguously (fn may reorder them). Columns go in blocks, so that rows are read in runs
// rather than with a stride of `cols` per value.
template <class Fn>
void for_each_column(const float* block, int count, std::int64_t cols, Fn&& fn) {
  constexpr std::int64_t kWidth = 64;
  std::vector<float> scratch(static_cast<std::size_t>(count) * kWidth);
  for (std::int64_t c0 = 0; c0 < cols; c0 += kWidth) {
    const std::int64_t w = std::min(kWidth, cols - c0);
    for (int r = 0; r < count; ++r) {
      const float* src = block + r * cols + c0;
      for (std::int64_t c = 0; c < w; ++c) scratch[c * count + r] = src[c];
    }
    for (std::int64_t c = 0; c < w; ++c) fn(c0 + c, scratch.data() + c * count);
  }
}

}  // namespace

void coordinate_median(const float* block, int count, std::int64_t cols, float* out) {
  require(count >= 1, "coordinate median: no values");
  const int k = (count - 1) / 2;  // the lower middle
  const bool even = count % 2 == 0;
  for_each_column(block, count, cols, [&](std::int64_t c, float* v) {
    std::nth_element(v, v + k, v + count);
    if (!even) {
      out[c] = v[k];
    } else {
      const float upper = *std::min_element(v + k + 1, v + count);
      out[c] = static_cast<float>((static_cast<double>(v[k]) + upper) / 2);
    }
  });
}

void coordinate_trimmed_mean(const float* block, int count, std::int64_t cols, int trim,
                             float* out) {
  require(trim >= 0 && count > 2 * trim, "trimmed mean: dropping " + std::to_string(trim) +
                                             " values at each end of " + std::to_string(count) +
                                             " leaves none");
  const int kept = count - 2 * trim;
  for_each_column(block, count, cols, [&](std::int64_t c, float* v) {
    std::sort(v, v + count);
    double sum = 0;
    for (int i = trim; i < count - trim; ++i) sum += v[i];
    out[c] = static_cast<float>(sum / kept);
  });
}

int trimmed_count(double beta, int parties) {
  // The small epsilon keeps β·P that is an integer in exact arithmetic (0.2·5) from falling
  // just below it in floating point and losing one.
  return static_cast<int>(beta * parties + 1e-9);
}

void weighted_rows_mean(const float* block, std::int64_t cols, const std::vector<int>& chosen,
                        const std::vector<double>& weights, float* out) {
  double total = 0;
  for (int i : chosen) total += weights.at(static_cast<std::size_t>(i));
  require(total > 0, "weighted mean: the chosen parties carry no weight");
  std::vector<double> sum(static_cast<std::size_t>(cols), 0.0);
  for (int i : chosen) {
    const float* row = block + i * cols;
    const double w = weights[static_cast<std::size_t>(i)];
    for (std::int64_t c = 0; c < cols; ++c) sum[c] += w * row[c];
  }
  for (std::int64_t c = 0; c < cols; ++c) out[c] = static_cast<float>(sum[c] / total);
}

void accumulate_gram(const float* block, int count, std::int64_t cols, double* gram) {
  // Columns in chunks converted to float64 once; each pair's dot product runs over a chunk.
  constexpr std::int64_t kWidth = 1024;
  std::vector<double> rows(static_cast<std::size_t>(count) * kWidth);
  for (std::int64_t c0 = 0; c0 < cols; c0 += kWidth) {
    const std::int64_t w = std::min(kWidth, cols - c0);
    for (int r = 0; r < count; ++r)
      for (std::int64_t c = 0; c < w; ++c) rows[r * kWidth + c] = block[r * cols + c0 + c];
    for (int i = 0; i < count; ++i) {
      const double* a = rows.data() + i * kWidth;
      for (int j = i; j < count; ++j) {
        const double* b = rows.data() + j * kWidth;
        double dot = 0;
        for (std::int64_t c = 0; c < w; ++c) dot += a[c] * b[c];
        gram[i * count + j] += dot;
        if (j != i) gram[j * count + i] += dot;
      }
    }
  }
}

std::vector<double> krum_scores(const std::vector<double>& gram, int count, int f) {
  require(f >= 0 && count > 2 * f + 2,
          "Krum: " + std::to_string(count) + " parties cannot tolerate f = " + std::to_string(f) +
              " (it needs more than 2f + 2 = " + std::to_string(2 * f + 2) + ")");
  require(gram.size() == static_cast<std::size_t>(count) * count, "Krum: Gram matrix size");
  const int neighbours = count - f - 2;
  std::vector<double> scores(static_cast<std::size_t>(count));
  std::vector<double> d;
  for (int i = 0; i < count; ++i) {
    d.clear();
    for (int j = 0; j < count; ++j) {
      if (j == i) continue;
      // Rounding can make a tiny distance negative; a squared distance is not.
      d.push_back(
          std::max(0.0, gram[i * count + i] + gram[j * count + j] - 2 * gram[i * count + j]));
    }
    std::sort(d.begin(), d.end());
    scores[i] = std::accumulate(d.begin(), d.begin() + neighbours, 0.0);
  }
  return scores;
}

std::vector<int> krum_select(const std::vector<double>& scores, const std::vector<int>& party,
                             int m) {
  const int count = static_cast<int>(scores.size());
  require(m >= 1 && m <= count,
          "Krum: cannot select " + std::to_string(m) + " of " + std::to_string(count) + " parties");
  std::vector<int> order(static_cast<std::size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    if (scores[a] != scores[b]) return scores[a] < scores[b];
    return party[a] < party[b];
  });
  order.resize(static_cast<std::size_t>(m));
  std::sort(order.begin(), order.end());
  return order;
}

double median_of(std::vector<double> values) {
  require(!values.empty(), "median of no values");
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace fedgan::federated
