// AdAM's probe, filter choice, plan and mask file (see include/fedgan/transfer/modulation.hpp).
#include "fedgan/transfer/modulation.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "fedgan/core/error.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/io/hdf5.hpp"

namespace fedgan::transfer {
namespace {

constexpr const char* kModulationMaskFormat = "fedgan-modulation-mask-1";

std::string modulated_layer_list(const std::vector<models::ModulatedLayer>& layers) {
  std::string out;
  for (const auto& l : layers)
    out += (out.empty() ? "" : ", ") + l.prefix + " (" + std::to_string(l.filters) + ")";
  return out;
}

}  // namespace

FisherProbe::FisherProbe(std::vector<models::ModulatedLayer> layers) : m_layers(std::move(layers)) {
  m_sum = torch::zeros({total_filters(m_layers)}, torch::kFloat64);
}

void FisherProbe::begin_party(const train::PartyStart&) {
  m_sum.zero_();
  m_steps = 0;
}

void FisherProbe::before_step(train::Net net, const torch::Tensor&, torch::Tensor& grad) {
  if (net != train::Net::Generator) return;
  // Summed on the training device (no host copy per step); mean() brings it to the CPU.
  if (m_sum.device() != grad.device()) m_sum = m_sum.to(grad.device());
  std::vector<torch::Tensor> rows;
  for (const auto& l : m_layers)
    rows.push_back(grad.narrow(0, l.a_offset, l.filters * l.rank)
                       .to(torch::kFloat64)
                       .view({l.filters, l.rank})
                       .pow(2)
                       .sum(1));
  m_sum += torch::cat(rows);
  ++m_steps;
}

torch::Tensor FisherProbe::mean() const {
  return (m_steps > 0 ? m_sum / static_cast<double>(m_steps) : m_sum.clone()).cpu();
}

std::int64_t total_filters(const std::vector<models::ModulatedLayer>& layers) {
  std::int64_t n = 0;
  for (const auto& l : layers) n += l.filters;
  return n;
}

torch::Tensor select_filters(const torch::Tensor& scores,
                             const std::vector<models::ModulatedLayer>& layers, double keep) {
  require(keep > 0 && keep <= 1, "--modulation-keep must be in (0, 1]");
  const auto n = total_filters(layers);
  require(scores.numel() == n, "modulation: " + std::to_string(scores.numel()) + " scores for " +
                                   std::to_string(n) + " filters");
  const auto s = scores.to(torch::kCPU, torch::kFloat64).contiguous();
  const double* v = s.data_ptr<double>();
  auto mask = torch::zeros({n}, torch::kInt64);
  auto* m = mask.data_ptr<std::int64_t>();
  std::int64_t first = 0;
  for (const auto& l : layers) {
    const auto kept = std::min<std::int64_t>(
        l.filters,
        static_cast<std::int64_t>(std::ceil(keep * static_cast<double>(l.filters) - 1e-9)));
    std::vector<std::int64_t> order(static_cast<std::size_t>(l.filters));
    std::iota(order.begin(), order.end(), 0);
    // Highest score first; equal scores in index order (stable).
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int64_t a, std::int64_t b) { return v[first + a] > v[first + b]; });
    for (std::int64_t i = 0; i < std::max<std::int64_t>(1, kept); ++i) m[first + order[i]] = 1;
    first += l.filters;
  }
  return mask;
}

void add_modulation_masks(FreezeConfig& config, const std::vector<models::ModulatedLayer>& layers,
                          const torch::Tensor& mask) {
  check_modulation_mask(mask, "the modulation mask", layers);
  const auto m = mask.to(torch::kCPU, torch::kInt64);
  config.masked_only = true;
  std::int64_t first = 0;
  for (const auto& l : layers) {
    const auto rows = m.narrow(0, first, l.filters).to(torch::kBool);
    config.masks[l.prefix + "." + models::kModA] =
        rows.view({l.filters, 1}).expand({l.filters, l.rank}).contiguous();
    config.masks[l.prefix + "." + models::kModB] =
        torch::full({l.inputs, l.rank}, rows.any().item<bool>(), torch::kBool);
    first += l.filters;
  }
}

void check_modulation_mask(const torch::Tensor& mask, const std::string& where,
                           const std::vector<models::ModulatedLayer>& layers) {
  const auto n = total_filters(layers);
  if (mask.dim() != 1 || mask.numel() != n)
    throw Error(where + ": holds a mask of " + std::to_string(mask.numel()) +
                " filters; this generator's modulated layers have " + std::to_string(n) + " (" +
                modulated_layer_list(layers) + ")");
  const auto m = mask.to(torch::kCPU, torch::kInt64);
  if (!((m == 0) | (m == 1)).all().item<bool>())
    throw Error(where + ": the mask holds values other than 0 and 1");
}

void write_modulation_mask(const std::string& path, const ModulationMask& mask) {
  io::write_atomically(path, [&](const std::string& temp) {
    h5::File f(temp, h5::File::Mode::Create);
    f.set_attr("/", "format", std::string(kModulationMaskFormat));
    f.set_attr("/", "architecture", mask.architecture);
    f.set_attr("/", "keep", mask.keep);
    f.set_attr("/", "probe_steps", mask.probe_steps);
    f.set_attr("/", "layers", mask.layers);
    f.write("/mask", mask.mask.to(torch::kCPU, torch::kInt64));
    f.write("/scores", mask.scores.defined() ? mask.scores.to(torch::kCPU, torch::kFloat64)
                                             : torch::zeros({0}, torch::kFloat64));
    f.close();
  });
}

ModulationMask read_modulation_mask(const std::string& path, const std::string& what,
                                    const std::string& architecture,
                                    const std::vector<models::ModulatedLayer>& layers) {
  const std::string where = path + " (" + what + ")";
  if (!h5::is_hdf5(path))
    throw Error(where +
                ": not an HDF5 file (expected a modulation_mask.h5 that an earlier "
                "`fedgan train --modulation-rank` wrote)");
  h5::File f(path, h5::File::Mode::Read);
  if (!h5::has_format(f, kModulationMaskFormat))
    throw Error(where + ": not a fedgan modulation mask (no attribute format = '" +
                kModulationMaskFormat + "'; expected OUT/modulation_mask.h5 of a run)");
  ModulationMask out;
  out.architecture = f.attr_string("/", "architecture").value_or("");
  if (out.architecture != architecture)
    throw Error(where + ": a mask of model '" + out.architecture + "'; this run's model is '" +
                architecture + "' (the mask fits only the architecture and rank it was made for)");
  out.keep = f.attr_double("/", "keep").value_or(0);
  out.probe_steps = f.attr_int("/", "probe_steps").value_or(0);
  out.layers = f.attr_strings("/", "layers").value_or(std::vector<std::string>{});
  std::vector<std::string> expected;
  for (const auto& l : layers) expected.push_back(l.prefix);
  if (out.layers != expected)
    throw Error(where + ": its layers differ from this generator's (" +
                modulated_layer_list(layers) + ")");
  if (!f.exists("/mask")) throw Error(where + ": has no /mask dataset");
  out.mask = f.read("/mask");
  if (f.exists("/scores")) out.scores = f.read("/scores");
  check_modulation_mask(out.mask, where, layers);
  return out;
}

}  // namespace fedgan::transfer
