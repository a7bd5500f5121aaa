// RdpAccountant: Rényi DP of the sampled Gaussian mechanism (Mironov, Talwar, Zhang 2019),
// composed over rounds, and its conversion to (ε, δ) (Balle et al. 2020; the classic bound).
// The arithmetic follows TF Privacy's rdp_accountant.py (_compute_log_a_int/_frac, in log
// space) so that fedgan's ε can be checked against it; no LibTorch.
#pragma once

#include <cstdint>
#include <vector>

namespace fedgan::privacy {

// TF Privacy's DEFAULT_RDP_ORDERS (rdp_privacy_accountant.py): 1.25 … 4.5, 5 … 63, 128, 256, 512.
std::vector<double> default_orders();

// log A_α of the sampled Gaussian mechanism with sampling rate q ∈ (0, 1), noise multiplier
// σ > 0 and order α > 1 (Mironov et al. 2019, Sec. 3.3): the integer-order binomial sum for
// integer α, the two-sided series with erfc tails for fractional α.
double sampled_gaussian_log_a(double q, double sigma, double order);

// RDP at order α of one step: 0 for q = 0, α/(2σ²) for q = 1, log A_α/(α − 1) otherwise;
// +inf for σ = 0 with q > 0 or for α = +inf.
double sampled_gaussian_rdp(double q, double sigma, double order);

// TF Privacy's compute_rdp: RDP of `steps` compositions at each order.
std::vector<double> compute_rdp(double q, double sigma, double steps,
                                const std::vector<double>& orders);

// How RDP becomes (ε, δ)-DP.
enum class Conversion {
  // Balle et al. 2020, "Hypothesis testing interpretations and Rényi DP", Thm. 21 (= Canonne,
  // Kamath, Steinke 2020, Prop. 12; TF Privacy's and Opacus's get_privacy_spent):
  // ε = r + log(1 − 1/α) − log(δα)/(α − 1).
  Balle2020,
  // Mironov 2017, "Rényi differential privacy", Prop. 3: ε = r − log δ/(α − 1).
  Classic,
};

struct PrivacySpent {
  double epsilon = 0;
  double order = 0;  // the order that gives the smallest ε
};

// ε at δ ∈ (0, 1): the smallest over the orders. Throws fedgan::Error on bad input (orders < 1,
// negative RDP, sizes that differ).
PrivacySpent epsilon_from_rdp(const std::vector<double>& orders, const std::vector<double>& rdp,
                              double delta, Conversion conversion = Conversion::Balle2020);

// One run's account: the RDP vector at fixed orders, composed round by round. Composition is
// addition, done in the same order on every rank and after a resume, so a resumed account is
// bit for bit the uninterrupted one.
class RdpAccountant {
 public:
  explicit RdpAccountant(std::vector<double> orders = default_orders());

  // Adds `steps` rounds of the sampled Gaussian mechanism (rate q, noise multiplier σ).
  void compose(double q, double sigma, int steps = 1);
  // ε after the rounds composed so far.
  PrivacySpent spent(double delta, Conversion conversion = Conversion::Balle2020) const;
  // ε if `steps` more rounds of (q, σ) were composed, without composing them.
  PrivacySpent spent_after(double q, double sigma, int steps, double delta,
                           Conversion conversion = Conversion::Balle2020) const;

  const std::vector<double>& orders() const { return m_orders; }
  const std::vector<double>& rdp() const { return m_rdp; }
  // Restores a stored account (checkpoint). Throws fedgan::Error when the orders differ.
  void restore(const std::vector<double>& orders, const std::vector<double>& rdp);

 private:
  std::vector<double> m_orders;
  std::vector<double> m_rdp;
};

// The smallest noise multiplier (to relative precision `tolerance`) whose ε after `steps`
// rounds at rate q is at most target_epsilon, by bisection; ε falls as σ grows. Throws
// fedgan::Error if no σ up to 10⁶ reaches the target.
double noise_for_epsilon(double q, int steps, double delta, double target_epsilon,
                         const std::vector<double>& orders = default_orders(),
                         double tolerance = 1e-6);

}  // namespace fedgan::privacy
