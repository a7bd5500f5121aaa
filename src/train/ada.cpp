// The ADA controller (see include/fedgan/train/ada.hpp).
#include "fedgan/train/ada.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "fedgan/core/error.hpp"

namespace fedgan::train {

AdaController::AdaController(AdaConfig config) : m_config(config), m_p(0) {
  require(m_config.target >= 0 && m_config.target < 1, "--ada-target must be in [0, 1)");
  require(m_config.kimg > 0 && std::isfinite(m_config.kimg), "--ada-kimg must be > 0");
  set_p(m_config.initial_p);
}

void AdaController::set_p(double p) {
  require(std::isfinite(p) && p >= 0 && p <= 1,
          "ADA probability " + std::to_string(p) + " is outside [0, 1]");
  m_p = p;
}

double AdaController::update(double sign_sum, double count, double images) {
  if (!enabled() || count <= 0) return 0.0;
  const double r = sign_sum / count;
  const double direction = r > m_config.target ? 1.0 : (r < m_config.target ? -1.0 : 0.0);
  m_p = std::clamp(m_p + direction * images / (m_config.kimg * 1000.0), 0.0, 1.0);
  return r;
}

}  // namespace fedgan::train
