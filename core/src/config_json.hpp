#pragma once
// Private to core: ModelConfig <-> JSON, shared by every format that carries a config.
#include "json_view.hpp"
#include "tidemark/core/model_config.hpp"
#include "tidemark/core/profile.hpp"

namespace tidemark::detail {

inline json config_to_json(const ModelConfig& c) {
  return json{{"layers", c.layers},   {"d_model", c.d_model}, {"heads", c.heads},
              {"seq", c.seq},         {"batch", c.batch},     {"vocab", c.vocab},
              {"dropout", c.dropout}, {"seed", c.seed},       {"dtype", c.dtype},
              {"device", c.device}, {"attention", c.attention},
              {"arch", c.arch},       {"kv_heads", c.key_value_heads()}};
}

inline ModelConfig config_from_json(const JsonView& v) {
  ModelConfig c;
  c.layers = v.at("layers").i64();
  c.d_model = v.at("d_model").i64();
  c.heads = v.at("heads").i64();
  c.seq = v.at("seq").i64();
  c.batch = v.at("batch").i64();
  c.vocab = v.at("vocab").i64();
  c.dropout = v.at("dropout").non_negative();
  if (auto s = v.get("seed")) c.seed = s->u64();
  c.dtype = v.at("dtype").str();
  c.device = v.at("device").str();
  // Files from before --attention and --arch: naive attention, gpt, as many kv heads as heads.
  if (auto a = v.get("attention")) c.attention = a->str();
  if (auto a = v.get("arch")) c.arch = a->str();
  if (auto k = v.get("kv_heads")) c.kv_heads = k->i64();
  try {
    c.validate();
  } catch (const std::exception& e) {
    v.fail(e.what());
  }
  return c;
}

// "sharding" of a profile, and the "ranks" and "zero" of a plan's "profile".
inline Sharding sharding_from_json(const JsonView& v) {
  Sharding s;
  const std::int64_t ranks = v.at("ranks").i64();
  if (ranks < 1 || ranks > 65536) v.at("ranks").fail("must be a rank count in [1, 65536]");
  const std::int64_t zero = v.at("zero").i64();
  if (zero < 0 || zero > 3) v.at("zero").fail("must be a ZeRO stage, 0 to 3");
  s.ranks = static_cast<int>(ranks);
  s.zero = static_cast<int>(zero);
  if (auto r = v.get("reduce_buffer_bytes")) s.reduce_buffer_bytes = r->u64();
  return s;
}

}  // namespace tidemark::detail
