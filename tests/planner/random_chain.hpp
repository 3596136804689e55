#pragma once
// Random small heterogeneous chains for checking the solvers against brute force.
// Byte counts are random integers up to `max_bytes`, times small integers (so sums of
// times are exact and ties are real ties). About one stage in five gets an extra variant,
// at most `variant_stages` of them: each multiplies the brute force's trees.
#include <random>
#include <string>

#include "tidemark/planner/baselines.hpp"
#include "tidemark/planner/chain.hpp"
#include "tidemark/planner/simulator.hpp"

namespace tidemark::testing {

inline planner::ChainCosts random_chain(std::mt19937& rng, int stages, int max_bytes = 1000,
                                   int variant_stages = 2) {
  auto num = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto bytes = [&](int lo, int hi) { return static_cast<std::uint64_t>(num(lo, hi)); };
  planner::ChainCosts c;
  c.resident = bytes(0, max_bytes);
  c.optimizer_peak = bytes(0, max_bytes);
  c.fixed_ms = num(0, 3);
  for (int k = 0; k < stages; ++k) {
    planner::StageCost s;
    s.name = "s" + std::to_string(k);
    s.kind = num(0, 9) < 7 ? "block" : "other";
    s.input = k == 0 ? bytes(0, max_bytes / 2) : c.stages[k - 1].out;
    s.out = bytes(1, max_bytes);
    s.param = bytes(0, max_bytes / 2);
    // Only the chain's input may lack a gradient, as in a real model (token ids).
    s.input_grad = k > 0 || num(0, 1) == 1;
    s.nograd_peak = bytes(0, max_bytes * 2);
    s.nograd_ms = num(0, 4);
    int variants = 1;
    if (variant_stages > 0 && num(0, 4) == 0) {
      variants = num(0, 3) == 0 ? 3 : 2;
      --variant_stages;
    }
    for (int v = 0; v < variants; ++v) {
      planner::VariantCost var;
      var.name = v == 0 ? "" : "v" + std::to_string(v);
      var.saved = bytes(0, max_bytes * 2);
      var.forward_peak = bytes(0, max_bytes * 2);
      var.backward_peak = bytes(0, max_bytes * 2);
      var.held_extra = num(0, 2) == 0 ? bytes(0, max_bytes) : 0;
      var.forward_ms = num(0, 4);
      var.backward_ms = num(0, 8);
      s.variants.push_back(var);
    }
    c.stages.push_back(s);
  }
  const Prediction none = planner::simulate(c, planner::none_plan(c));
  c.measured_peak = none.peak_bytes;
  c.measured_step_ms = none.step_ms;
  return c;
}

inline std::uint64_t random_between(std::mt19937& rng, std::uint64_t lo, std::uint64_t hi) {
  if (hi <= lo) return lo;
  return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
}

}  // namespace tidemark::testing
