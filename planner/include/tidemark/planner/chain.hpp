#pragma once
// The chain cost model the planner solves on, built from a tidemark.profile/1: a model's
// chain of stages (tidemark::Chain, the GPT) as the planner sees it, its costs.
//
// Stage k maps activation a_k to a_{k+1}. Bytes and times per stage (see profile.hpp for
// how they are measured). The input of stage 0 (token ids) belongs to the batch and is
// counted in `resident`; for k > 0, a_k is the output of stage k-1, so x(k) == y(k-1).
#include <cstdint>
#include <string>
#include <vector>

#include "tidemark/core/profile.hpp"

namespace tidemark::planner {

struct VariantCost {
  std::string name;  // "" is the stage's plain form (save everything)
  std::uint64_t saved = 0;         // s
  std::uint64_t forward_peak = 0;  // f
  std::uint64_t backward_peak = 0; // b
  // Added to b when the gradient of the stage's output stays held through its backward (the
  // last stage of a list: a checkpoint or loss.backward() holds it); see StageProfile.
  std::uint64_t held_extra = 0;
  double forward_ms = 0;
  double backward_ms = 0;
};

struct StageCost {
  std::string name;
  std::string kind;
  std::uint64_t input = 0;  // bytes of a_k as profiled; only stage 0's is used (its gradient)
  std::uint64_t out = 0;    // y: bytes of a_{k+1} (and of its gradient)
  std::uint64_t param = 0;  // p: parameter-gradient bytes allocated by this stage's backward
  bool input_grad = true;   // backward produces a gradient for a_k (bytes x(k))
  std::uint64_t nograd_peak = 0;  // fn: forward without autograd recording
  double nograd_ms = 0;
  std::vector<VariantCost> variants;  // [0] is the plain form; others from the profile

  const VariantCost& plain() const { return variants.front(); }
};

struct ChainCosts {
  std::vector<StageCost> stages;
  std::uint64_t resident = 0;        // live bytes when a step starts
  std::uint64_t optimizer_peak = 0;  // above live bytes when the optimizer step starts
  std::uint64_t checkpoint_state = 0; // r: kept by every checkpoint node, allocated again
                                      // while it recomputes (RNG states)
  double fixed_ms = 0;               // step time outside stage forward/backward
  std::uint64_t measured_peak = 0;   // the profile's no-checkpoint peak (0 if unknown)
  double measured_step_ms = 0;
  // Pinned host copies (the profile's host_link); both 0 where nothing can be offloaded,
  // and then no solver offloads.
  double d2h_bytes_per_ms = 0;
  double h2d_bytes_per_ms = 0;

  int size() const { return static_cast<int>(stages.size()); }
  // Input bytes of stage k: 0 for stage 0 (part of `resident`), else out of stage k-1.
  std::uint64_t in(int k) const { return k == 0 ? 0 : stages[k - 1].out; }
  // Bytes of the gradient stage k's backward produces for its input (0 if none).
  std::uint64_t grad_in(int k) const {
    if (!stages[k].input_grad) return 0;
    return k == 0 ? stages[0].input : stages[k - 1].out;
  }
  bool can_offload() const { return d2h_bytes_per_ms > 0 && h2d_bytes_per_ms > 0; }
  double d2h_ms(std::uint64_t bytes) const { return static_cast<double>(bytes) / d2h_bytes_per_ms; }
  double h2d_ms(std::uint64_t bytes) const { return static_cast<double>(bytes) / h2d_bytes_per_ms; }
  // Index of `variant` in stage k, or -1.
  int variant_index(int k, const std::string& variant) const;
  // Stages whose kind is "block"; every stage if none is.
  std::vector<int> block_stages() const;
};

// The least a variant's rebuild is taken to cost beyond its plain stage, where the profile
// timed none: at least one kernel runs for it (chain_from_profile).
constexpr double kRebuildFloorMs = 1e-3;

ChainCosts chain_from_profile(const ChainProfile& profile);

}  // namespace tidemark::planner
