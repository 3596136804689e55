#pragma once
// Small configurations of tidemark's model for tests.
#include "tidemark/core/model_config.hpp"

namespace tidemark::testing {

inline ModelConfig gpt_config(std::int64_t layers, std::int64_t d_model, std::int64_t heads,
                              std::int64_t seq, std::int64_t batch, double dropout = 0.1) {
  ModelConfig c;
  c.layers = layers;
  c.d_model = d_model;
  c.heads = heads;
  c.seq = seq;
  c.batch = batch;
  c.dropout = dropout;
  return c;
}

// `c` as a llama with `kv_heads` key/value heads and `attention`.
inline ModelConfig as_llama(ModelConfig c, std::int64_t kv_heads, const char* attention = "naive") {
  c.arch = "llama";
  c.kv_heads = kv_heads;
  c.attention = attention;
  return c;
}

}  // namespace tidemark::testing
