// ModelConfig text form (see include/fedgan/models/model_config.hpp).
#include "fedgan/models/model_config.hpp"

#include "fedgan/core/error.hpp"

#include <sstream>

namespace fedgan {

std::string ModelConfig::to_string() const {
  std::ostringstream s;
  s << family << " c=" << channels << " s=" << image_size << " z=" << latent_dim
    << " gw=" << g_width << " dw=" << d_width << " k=" << num_classes << " dn=" << d_norm;
  return s.str();
}

ModelConfig ModelConfig::parse(const std::string& text) {
  std::istringstream s(text);
  ModelConfig c;
  if (!(s >> c.family)) throw Error("architecture string is empty");
  std::string item;
  while (s >> item) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw Error("architecture string: bad item '" + item + "'");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    try {
      if (key == "c") c.channels = std::stoi(value);
      else if (key == "s") c.image_size = std::stoi(value);
      else if (key == "z") c.latent_dim = std::stoi(value);
      else if (key == "gw") c.g_width = std::stoi(value);
      else if (key == "dw") c.d_width = std::stoi(value);
      else if (key == "k") c.num_classes = std::stoi(value);
      else if (key == "dn") c.d_norm = value;
      else throw Error("architecture string: unknown key '" + key + "'");
    } catch (const std::invalid_argument&) {
      throw Error("architecture string: '" + item + "' is not a number");
    }
  }
  return c;
}

}  // namespace fedgan
