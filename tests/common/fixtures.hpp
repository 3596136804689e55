#pragma once
// Hand-made profiles for torch-free tests.
#include <string>

#include "tidemark/core/profile.hpp"

namespace tidemark::testing {

// A GPT-shaped profile with `blocks` blocks: embedding, blocks, head. Numbers are plausible,
// not measured; block k's saved bytes grow with k so the chain is heterogeneous.
inline ChainProfile make_profile(int blocks) {
  ChainProfile p;
  p.config.layers = blocks;
  p.config.d_model = 64;
  p.config.heads = 4;
  p.config.seq = 64;
  p.config.batch = 4;
  p.digest = p.config.digest();
  p.torch_version = "test";
  p.static_bytes = StaticBytes{4'000'000, 4'000'000, 8'000'000, 4096, 1000};
  p.optimizer_peak_bytes = 300'000;
  const std::uint64_t act = 65536;  // batch * seq * d_model * 4
  StageProfile emb;
  emb.name = "embedding";
  emb.kind = "embedding";
  emb.input_bytes = 2048;
  emb.output_bytes = act;
  emb.saved_bytes = act / 4;
  emb.param_bytes = 100'000;
  emb.input_requires_grad = false;
  emb.forward_peak_bytes = act + act / 4;
  emb.forward_nograd_peak_bytes = act + act / 4;
  emb.backward_peak_bytes = 150'000;
  emb.forward_ms = 0.2;
  emb.forward_nograd_ms = 0.2;
  emb.backward_ms = 0.3;
  p.stages.push_back(emb);
  for (int k = 0; k < blocks; ++k) {
    StageProfile b;
    b.name = "block." + std::to_string(k);
    b.kind = "block";
    b.input_bytes = act;
    b.output_bytes = act;
    b.saved_bytes = 15 * act + static_cast<std::uint64_t>(k) * act / 2;
    b.param_bytes = 800'000;
    b.forward_peak_bytes = b.saved_bytes + act + 4 * act;
    b.forward_nograd_peak_bytes = act + 6 * act;
    b.backward_peak_bytes = b.param_bytes + 6 * act;
    b.forward_ms = 2.0 + 0.1 * k;
    b.forward_nograd_ms = 1.9 + 0.1 * k;
    b.backward_ms = 4.0 + 0.2 * k;
    p.stages.push_back(b);
  }
  StageProfile head;
  head.name = "head";
  head.kind = "head";
  head.input_bytes = act;
  head.output_bytes = 4;
  head.saved_bytes = 3 * act;
  head.param_bytes = 70'000;
  head.forward_peak_bytes = 5 * act;
  head.forward_nograd_peak_bytes = 4 * act;
  head.backward_peak_bytes = 4 * act;
  head.forward_ms = 0.5;
  head.forward_nograd_ms = 0.5;
  head.backward_ms = 1.0;
  p.stages.push_back(head);
  double staged = 0;
  for (const auto& l : p.stages) staged += l.forward_ms + l.backward_ms;
  p.step_ms = staged + 3.0;
  p.peak_bytes = 1;  // replaced below by the caller's simulation when it matters
  // Roughly what a no-checkpoint step peaks at: everything retained at the end of forward
  // plus the head's backward; the planner tests that need the exact figure simulate it.
  std::uint64_t acts = 0;
  for (const auto& l : p.stages) acts += l.output_bytes + l.saved_bytes;
  p.peak_bytes = p.static_bytes.resident() + acts + head.backward_peak_bytes;
  return p;
}

}  // namespace tidemark::testing
