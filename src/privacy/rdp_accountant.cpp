// RDP of the sampled Gaussian mechanism and its conversion to (ε, δ); see rdp_accountant.hpp.
// Follows TF Privacy's rdp_accountant.py function by function (names in the comments) so that a
// reviewer can hold the two side by side; tests/unit/test_rdp_accountant.cpp checks both
// against an independent multi-precision computation (scripts/rdp_reference.py).
#include "fedgan/privacy/rdp_accountant.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "fedgan/core/error.hpp"

namespace fedgan::privacy {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// log(exp(x) + exp(y)) (_log_add).
double log_add(double x, double y) {
  const double a = std::min(x, y), b = std::max(x, y);
  if (a == -kInf) return b;
  return std::log1p(std::exp(a - b)) + b;
}

// log(exp(x) − exp(y)) for x ≥ y (_log_sub).
double log_sub(double x, double y) {
  if (x < y) throw Error("RDP accountant: log_sub of a larger number (series did not converge)");
  if (y == -kInf) return x;
  if (x == y) return -kInf;
  const double d = x - y;
  // expm1 overflows past ~709: then exp(x) − exp(y) = exp(x) to double precision.
  if (d > 700) return x;
  return std::log(std::expm1(d)) + y;
}

// log(erfc(x)) (_log_erfc). erfc keeps full relative precision until it underflows near
// x = 26.5; beyond, the asymptotic series TF Privacy uses (its terms past x⁻⁸ are below 1e-13).
double log_erfc(double x) {
  if (x < 26.0) return std::log(std::erfc(x));
  const double x2 = x * x;
  return -std::log(M_PI) / 2 - std::log(x) - x2 - 0.5 / x2 + 0.625 / (x2 * x2) -
         37.0 / 24.0 / (x2 * x2 * x2) + 353.0 / 64.0 / (x2 * x2 * x2 * x2);
}

// Integer α: A_α = Σ_i C(α,i) q^i (1−q)^(α−i) exp((i²−i)/(2σ²)) (_compute_log_a_int).
double log_a_int(double q, double sigma, int alpha) {
  double log_a = -kInf;
  const double lgamma_alpha = std::lgamma(alpha + 1.0);
  const double log_q = std::log(q), log_1mq = std::log1p(-q);
  for (int i = 0; i <= alpha; ++i) {
    const double log_coef = lgamma_alpha - std::lgamma(i + 1.0) - std::lgamma(alpha - i + 1.0) +
                            i * log_q + (alpha - i) * log_1mq;
    const double s = log_coef + (static_cast<double>(i) * i - i) / (2 * sigma * sigma);
    log_a = log_add(log_a, s);
  }
  return log_a;
}

// Fractional α: the two series of Mironov et al. 2019, Sec. 3.3, each term weighted by a
// Gaussian tail split at z0 (_compute_log_a_frac). The binomial coefficient C(α, i) changes
// sign for i > α; it is carried as log|C| and a sign, updated by C(α,i+1) = C(α,i)(α−i)/(i+1)
// (no overflow for large i, unlike a direct evaluation).
double log_a_frac(double q, double sigma, double alpha) {
  double log_a0 = -kInf, log_a1 = -kInf;
  const double z0 = sigma * sigma * std::log(1 / q - 1) + 0.5;
  const double log_q = std::log(q), log_1mq = std::log1p(-q);
  double log_coef = 0;  // log|C(α, 0)|
  bool positive = true;
  // The terms decay polynomially in i for small α; this bound is far beyond any case that
  // converges (TF Privacy has none; a bound keeps a bad input from spinning forever).
  constexpr long kMaxTerms = 100'000'000;
  for (long i = 0;; ++i) {
    if (i == kMaxTerms)
      throw Error(fmt::format(
          "RDP accountant: the fractional-order series did not converge for q={:g}, sigma={:g}, "
          "order={:g}",
          q, sigma, alpha));
    const double di = static_cast<double>(i);
    const double j = alpha - di;
    const double log_t0 = log_coef + di * log_q + j * log_1mq;
    const double log_t1 = log_coef + j * log_q + di * log_1mq;
    const double log_e0 = std::log(0.5) + log_erfc((di - z0) / (M_SQRT2 * sigma));
    const double log_e1 = std::log(0.5) + log_erfc((z0 - j) / (M_SQRT2 * sigma));
    const double log_s0 = log_t0 + (di * di - di) / (2 * sigma * sigma) + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / (2 * sigma * sigma) + log_e1;
    if (positive) {
      log_a0 = log_add(log_a0, log_s0);
      log_a1 = log_add(log_a1, log_s1);
    } else {
      log_a0 = log_sub(log_a0, log_s0);
      log_a1 = log_sub(log_a1, log_s1);
    }
    if (std::max(log_s0, log_s1) < -30) break;
    const double factor = alpha - di;
    log_coef += std::log(std::abs(factor)) - std::log(di + 1);
    if (factor < 0) positive = !positive;
  }
  return log_add(log_a0, log_a1);
}

bool is_integer(double x) { return std::isfinite(x) && std::floor(x) == x; }

}  // namespace

std::vector<double> default_orders() {
  std::vector<double> orders{1.25, 1.5, 1.75, 2., 2.25, 2.5, 3., 3.5, 4., 4.5};
  for (int a = 5; a < 64; ++a) orders.push_back(a);
  for (double a : {128., 256., 512.}) orders.push_back(a);
  return orders;
}

double sampled_gaussian_log_a(double q, double sigma, double order) {
  require(q > 0 && q < 1,
          fmt::format("RDP accountant: sampling rate {:g} must be in (0, 1) for log A", q));
  require(sigma > 0 && std::isfinite(sigma),
          "RDP accountant: noise multiplier must be positive and finite");
  require(order > 1 && std::isfinite(order), "RDP accountant: order must be finite and > 1");
  // Integer orders up to 10⁶ take the binomial sum (TF Privacy: float(alpha).is_integer()).
  if (is_integer(order) && order <= 1e6) return log_a_int(q, sigma, static_cast<int>(order));
  return log_a_frac(q, sigma, order);
}

double sampled_gaussian_rdp(double q, double sigma, double order) {
  require(q >= 0 && q <= 1, "RDP accountant: sampling rate must be in [0, 1]");
  require(sigma >= 0, "RDP accountant: noise multiplier must be >= 0");
  require(order > 1, "RDP accountant: order must be > 1");
  if (q == 0) return 0;  // _compute_rdp
  if (sigma == 0 || std::isinf(order)) return kInf;
  if (q == 1) return order / (2 * sigma * sigma);
  return sampled_gaussian_log_a(q, sigma, order) / (order - 1);
}

std::vector<double> compute_rdp(double q, double sigma, double steps,
                                const std::vector<double>& orders) {
  std::vector<double> rdp;
  rdp.reserve(orders.size());
  for (double a : orders) rdp.push_back(sampled_gaussian_rdp(q, sigma, a) * steps);
  return rdp;
}

PrivacySpent epsilon_from_rdp(const std::vector<double>& orders, const std::vector<double>& rdp,
                              double delta, Conversion conversion) {
  require(delta > 0 && delta < 1, "RDP accountant: delta must be in (0, 1)");
  require(orders.size() == rdp.size() && !orders.empty(),
          "RDP accountant: orders and RDP values differ in number (or are empty)");
  PrivacySpent best{kInf, orders.front()};
  for (std::size_t k = 0; k < orders.size(); ++k) {
    const double a = orders[k], r = rdp[k];
    require(a >= 1, "RDP accountant: Rényi divergence order must be >= 1");
    require(r >= 0, "RDP accountant: Rényi divergence must be >= 0");
    double eps = kInf;
    if (conversion == Conversion::Balle2020) {
      // _compute_eps: below the KL bound δ ≤ sqrt(1 − exp(−r)) nothing is spent; the bound
      // is unstable as α → 1, hence the floor at 1.01.
      if (delta * delta + std::expm1(-r) >= 0) {
        eps = 0;
      } else if (a > 1.01) {
        eps = r + std::log1p(-1 / a) - std::log(delta * a) / (a - 1);
      }
    } else if (a > 1) {
      eps = r - std::log(delta) / (a - 1);
    }
    if (eps < best.epsilon) best = {eps, a};
  }
  best.epsilon = std::max(0.0, best.epsilon);
  return best;
}

RdpAccountant::RdpAccountant(std::vector<double> orders)
    : m_orders(std::move(orders)), m_rdp(m_orders.size(), 0.0) {
  require(!m_orders.empty(), "RDP accountant: no orders");
  for (double a : m_orders) require(a > 1, "RDP accountant: every order must be > 1");
}

void RdpAccountant::compose(double q, double sigma, int steps) {
  const auto step = compute_rdp(q, sigma, steps, m_orders);
  for (std::size_t k = 0; k < m_rdp.size(); ++k) m_rdp[k] += step[k];
}

PrivacySpent RdpAccountant::spent(double delta, Conversion conversion) const {
  return epsilon_from_rdp(m_orders, m_rdp, delta, conversion);
}

PrivacySpent RdpAccountant::spent_after(double q, double sigma, int steps, double delta,
                                        Conversion conversion) const {
  RdpAccountant next = *this;
  next.compose(q, sigma, steps);
  return next.spent(delta, conversion);
}

void RdpAccountant::restore(const std::vector<double>& orders, const std::vector<double>& rdp) {
  require(orders == m_orders,
          "RDP accountant: the stored account uses other orders than this run (" +
              std::to_string(orders.size()) + " stored, " + std::to_string(m_orders.size()) +
              " here)");
  require(rdp.size() == orders.size(), "RDP accountant: stored RDP and orders differ in size");
  for (double r : rdp)
    require(r >= 0 && !std::isnan(r), "RDP accountant: a stored RDP value is negative or NaN");
  m_rdp = rdp;
}

double noise_for_epsilon(double q, int steps, double delta, double target_epsilon,
                         const std::vector<double>& orders, double tolerance) {
  require(target_epsilon > 0 && std::isfinite(target_epsilon),
          "target epsilon must be positive and finite");
  require(steps >= 1, "rounds must be at least 1");
  const auto eps = [&](double sigma) {
    return epsilon_from_rdp(orders, compute_rdp(q, sigma, steps, orders), delta).epsilon;
  };
  double lo = 0, hi = 1;
  while (eps(hi) > target_epsilon) {
    lo = hi;
    hi *= 2;
    if (hi > 1e6)
      throw Error(fmt::format(
          "target epsilon {:g} is not reached by any noise multiplier up to 1e6 (q = {:g}, {} "
          "rounds, delta = {:g})",
          target_epsilon, q, steps, delta));
  }
  // Invariant: eps(lo) > target >= eps(hi); hi is returned, so the answer always meets it.
  while (hi - lo > tolerance * hi) {
    const double mid = 0.5 * (lo + hi);
    (eps(mid) > target_epsilon ? lo : hi) = mid;
  }
  return hi;
}

}  // namespace fedgan::privacy
