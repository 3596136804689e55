#pragma once
// Profiling a small GPT in tests: one warm-up step, `iters` measured ones.
#include "tidemark/runtime/profiling.hpp"

namespace tidemark::testing {

inline runtime::ProfileRun profile_gpt(const ModelConfig& c, int iters, bool trace = false) {
  runtime::TrainingConfig cfg;
  cfg.model = c;
  runtime::Trainer trainer(cfg);
  runtime::ProfileOptions o;
  o.warmup = 1;
  o.iters = iters;
  o.trace = trace;
  return runtime::profile_model(trainer, o);
}

}  // namespace tidemark::testing
