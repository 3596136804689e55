#include "tidemark/core/model_config.hpp"

#include <cmath>
#include <fmt/format.h>

#include "tidemark/core/error.hpp"

namespace tidemark {

void ModelConfig::validate() const {
  auto positive = [](std::int64_t v, const char* flag) {
    if (v <= 0) throw UserError(fmt::format("{} must be a positive integer, got {}", flag, v));
  };
  positive(layers, "--layers");
  positive(d_model, "--d-model");
  positive(heads, "--heads");
  positive(seq, "--seq");
  positive(batch, "--batch");
  positive(vocab, "--vocab");
  if (arch != "gpt" && arch != "llama") {
    throw UserError(fmt::format("--arch '{}' does not exist; use gpt or llama", arch));
  }
  if (kv_heads < 0) throw UserError(fmt::format("--kv-heads must be a positive integer, got {}", kv_heads));
  if (d_model % heads != 0) {
    throw UserError(fmt::format("--heads {} does not divide --d-model {}; pick heads so that "
                                "d_model / heads is a whole head size",
                                heads, d_model));
  }
  if (arch == "gpt" && key_value_heads() != heads) {
    throw UserError(fmt::format("--kv-heads {} needs --arch llama (grouped-query attention); the gpt block has "
                                "as many key/value heads as --heads",
                                kv_heads));
  }
  if (heads % key_value_heads() != 0) {
    throw UserError(fmt::format("--kv-heads {} does not divide --heads {}; each key/value head serves a whole "
                                "group of query heads, so pick a divisor of {}",
                                kv_heads, heads, heads));
  }
  if (arch == "llama" && (d_model / heads) % 2 != 0) {
    throw UserError(fmt::format("the rotary dimension --d-model / --heads = {} is odd; rotary embeddings turn "
                                "pairs of dimensions, so pick --d-model and --heads with an even quotient",
                                d_model / heads));
  }
  if (layers > 4096 || d_model > 65536 || seq > 1 << 20 || batch > 1 << 20 || vocab > 1 << 24) {
    throw UserError("model size is out of range (layers <= 4096, d_model <= 65536)");
  }
  if (!(dropout >= 0.0 && dropout < 1.0)) {
    throw UserError(fmt::format("--dropout must be in [0, 1), got {}", dropout));
  }
  if (dtype != "float32" && dtype != "bfloat16") {
    throw UserError(fmt::format("--dtype '{}' is not supported; use float32 or bfloat16", dtype));
  }
  if (attention != "naive" && attention != "chunked" && attention != "sdpa") {
    throw UserError(fmt::format("--attention '{}' does not exist; use naive, chunked or sdpa", attention));
  }
  if (device != "cpu" && device != "cuda") {
    throw UserError(fmt::format("--device '{}' is not supported; use cpu or cuda", device));
  }
}

std::int64_t ModelConfig::mlp_hidden() const {
  if (arch == "gpt") return 4 * d_model;
  constexpr std::int64_t multiple = 256;
  const std::int64_t hidden = 2 * (4 * d_model) / 3;
  return (hidden + multiple - 1) / multiple * multiple;
}

std::string ModelConfig::digest() const {
  // Dropout enters only as on/off: masks exist or not, their size does not depend on p.
  // The gpt arch and naive attention add nothing, so digests of files made before --arch and
  // --attention still match.
  const std::string llama = arch == "gpt" ? "" : fmt::format(";arch={};kv_heads={}", arch, key_value_heads());
  return fnv1a_hex(fmt::format("gpt;layers={};d_model={};heads={};seq={};batch={};vocab={};"
                               "dropout={};dtype={};device={}{}{}",
                               layers, d_model, heads, seq, batch, vocab, dropout > 0 ? 1 : 0,
                               dtype, device, attention == "naive" ? "" : ";attention=" + attention, llama));
}

std::string ModelConfig::describe() const {
  // The gpt arch and naive attention are not named, so identities of states saved before
  // --arch and --attention match.
  const std::string llama =
      arch == "gpt" ? "" : fmt::format("{} (kv heads {}), ", arch, key_value_heads());
  return fmt::format("{}{} layers, d_model {}, {} heads, seq {}, batch {}, vocab {}, dropout {:g}, {}{} on {}", llama,
                     layers, d_model, heads, seq, batch, vocab, dropout,
                     attention == "naive" ? "" : attention + " attention, ", dtype, device);
}

std::string fnv1a_hex(const std::string& text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

}  // namespace tidemark
