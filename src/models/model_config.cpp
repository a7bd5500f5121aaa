// ModelConfig text form (see include/fedgan/models/model_config.hpp).
#include "fedgan/models/model_config.hpp"

#include <cerrno>
#include <cstdlib>
#include <algorithm>
#include <map>
#include <vector>
#include <sstream>

#include "fedgan/core/error.hpp"

#include <sodium.h>

namespace fedgan::models {
namespace {

// The whole of `value` as an int, or fedgan::Error naming the item.
int parse_int(const std::string& item, const std::string& value) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || end != value.c_str() + value.size() || errno == ERANGE || v < -(1LL << 31) ||
      v >= (1LL << 31))
    throw Error("architecture string: '" + item + "' is not an integer in range");
  return static_cast<int>(v);
}

void check_range(const char* key, const char* meaning, int value, int lo, int hi) {
  if (value < lo || value > hi)
    throw Error("model architecture: " + std::string(key) + "=" + std::to_string(value) + " (" +
                meaning + ") is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

// The D normalisation named by "dn=VALUE".
DNorm parse_d_norm(const std::string& value) {
  const auto* norm = d_norms().find(value);
  if (norm == nullptr)
    throw Error("model architecture: dn=" + value + " is unknown (expected " +
                d_norms().expected() + ")");
  return norm->value;
}

}  // namespace

const ChoiceTable<Choice<DNorm>>& d_norms() {
  static const Choice<DNorm> entries[] = {
      {DNorm::Batch, "batch", ""},
      {DNorm::None, "none", ""},
      {DNorm::Spectral, "spectral", "Miyato et al. 2018"},
  };
  static const ChoiceTable<Choice<DNorm>> table(entries, "--d-norm", "normalisation");
  return table;
}

std::string to_string(DNorm norm) { return d_norms().name(norm); }

std::string ScriptArchives::id() const {
  crypto_generichash_state state;
  unsigned char hash[8];
  crypto_generichash_init(&state, nullptr, 0, sizeof(hash));
  for (const std::string* part : {&generator, &discriminator}) {
    const std::uint64_t n = part->size();  // length-prefixed: (a, bc) and (ab, c) differ
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(&n), sizeof(n));
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(part->data()),
                              part->size());
  }
  crypto_generichash_final(&state, hash, sizeof(hash));
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : hash) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

void ModelConfig::set_scripts(ScriptArchives archives) {
  script_id = archives.id();
  scripts = std::make_shared<const ScriptArchives>(std::move(archives));
}

std::string ModelConfig::to_string() const {
  std::ostringstream s;
  s << family << " c=" << channels << " s=" << image_size << " z=" << latent_dim;
  if (is_torchscript()) {
    s << " k=" << num_classes << " id=" << script_id;
  } else {
    s << " gw=" << g_width << " dw=" << d_width << " k=" << num_classes
      << " dn=" << models::to_string(d_norm);
    if (g_mod_rank > 0) s << " gm=" << g_mod_rank;
  }
  return s.str();
}

void ModelConfig::validate() const {
  if (family.empty()) throw Error("model architecture: the model family is empty");
  check_range("c", "image channels", channels, 1, 4);
  check_range("s", "image size", image_size, 1, 1024);
  check_range("z", "latent size", latent_dim, 1, kMaxModelWidth);
  check_range("k", "classes", num_classes, 0, kMaxClasses);
  if (is_torchscript() && g_mod_rank != 0)
    throw Error("model architecture: gm=" + std::to_string(g_mod_rank) +
                " (--modulation-rank): kernel modulation is a dcgan option; a TorchScript model "
                "cannot be modulated by fedgan (use --model dcgan, or no --modulation-rank)");
  if (is_torchscript()) {
    const bool hex = script_id.size() == 16 &&
                     script_id.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex)
      throw Error("model architecture: id=" + script_id +
                  " is not the 16 hex digits that name a TorchScript model");
    return;
  }
  check_range("gw", "generator width", g_width, 2, kMaxModelWidth);
  check_range("dw", "discriminator width", d_width, 1, kMaxModelWidth);
  check_range("gm", "rank of G's kernel modulation", g_mod_rank, 0, kMaxModulationRank);
}

ModelConfig ModelConfig::parse(const std::string& text) {
  std::istringstream s(text);
  ModelConfig c;
  if (!(s >> c.family)) throw Error("architecture string is empty");
  if (c.family.find('=') != std::string::npos)
    throw Error("architecture string: it starts with '" + c.family +
                "', not with the model family (e.g. dcgan)");
  std::map<std::string, int> seen;
  std::string item;
  while (s >> item) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw Error("architecture string: bad item '" + item + "'");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (seen[key]++) throw Error("architecture string: '" + key + "' is given twice");
    if (key == "c")
      c.channels = parse_int(item, value);
    else if (key == "s")
      c.image_size = parse_int(item, value);
    else if (key == "z")
      c.latent_dim = parse_int(item, value);
    else if (key == "gw")
      c.g_width = parse_int(item, value);
    else if (key == "dw")
      c.d_width = parse_int(item, value);
    else if (key == "k")
      c.num_classes = parse_int(item, value);
    else if (key == "dn")
      c.d_norm = parse_d_norm(value);
    else if (key == "gm" && !c.is_torchscript())
      c.g_mod_rank = parse_int(item, value);
    else if (key == "id")
      c.script_id = value;
    else
      throw Error("architecture string: unknown key '" + key + "'");
  }
  const std::vector<std::string> keys =
      c.is_torchscript() ? std::vector<std::string>{"c", "s", "z", "k", "id"}
                         : std::vector<std::string>{"c", "s", "z", "gw", "dw", "k", "dn"};
  for (const auto& key : keys)
    if (!seen.count(key))
      throw Error("architecture string: '" + key + "=' is missing (expected e.g. '" +
                  (c.is_torchscript() ? std::string("torchscript c=3 s=64 z=128 k=0 id=0123456789abcdef")
                                      : ModelConfig().to_string()) +
                  "')");
  for (const auto& [key, n] : seen)
    if (std::find(keys.begin(), keys.end(), key) == keys.end() &&
        !(key == "gm" && !c.is_torchscript()))
      throw Error("architecture string: '" + key + "=' is not a key of family " + c.family);
  c.validate();
  return c;
}

}  // namespace fedgan::models
