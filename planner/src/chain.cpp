#include "tidemark/planner/chain.hpp"

#include <fmt/format.h>

#include "tidemark/core/error.hpp"

namespace tidemark::planner {

int ChainCosts::variant_index(int k, const std::string& variant) const {
  const auto& vs = stages[k].variants;
  for (size_t i = 0; i < vs.size(); ++i) {
    if (vs[i].name == variant) return static_cast<int>(i);
  }
  // The plain form may be named explicitly.
  if (variant == "full" || variant == "save") return 0;
  return -1;
}

std::vector<int> ChainCosts::block_stages() const {
  std::vector<int> out;
  for (int k = 0; k < size(); ++k) {
    if (stages[k].kind == "block") out.push_back(k);
  }
  if (out.empty()) {
    for (int k = 0; k < size(); ++k) out.push_back(k);
  }
  return out;
}

namespace {

std::uint64_t held_extra(std::uint64_t held_peak, std::uint64_t peak) {
  return held_peak > peak ? held_peak - peak : 0;
}

}  // namespace

ChainCosts chain_from_profile(const ChainProfile& p) {
  ChainCosts c;
  // Note [ZeRO] (runtime/zero.hpp): from ZeRO-1 on, a parameter's gradient is copied into
  // its stage's buffer and freed as soon as it is complete, so a stage's backward keeps no
  // gradients (the measured backward peak counts the transient ones and the buffer); the
  // gradient buffers that outlive a stage are static (ZeRO-1, measured in `other`) or, from
  // ZeRO-2 on, the one still being reduced while the next stage's backward runs.
  const bool sharded = p.sharding.zero > 0;
  c.resident = p.static_bytes.resident() + (sharded ? p.sharding.reduce_buffer_bytes : 0);
  c.optimizer_peak = p.optimizer_peak_bytes;
  c.checkpoint_state = p.checkpoint_state_bytes;
  c.fixed_ms = p.fixed_ms();
  c.measured_peak = p.peak_bytes;
  c.measured_step_ms = p.step_ms;
  c.d2h_bytes_per_ms = p.host_link.d2h_bytes_per_ms;
  c.h2d_bytes_per_ms = p.host_link.h2d_bytes_per_ms;
  // The execution model chains stages: a_k is stage k-1's output, and backward reaches every
  // stage. Profiles that say otherwise cannot be planned, so refuse them by name.
  for (size_t k = 1; k < p.stages.size(); ++k) {
    const auto& l = p.stages[k];
    if (!l.input_requires_grad) {
      throw FormatError(fmt::format("profile: layers[{}] ({}): input_requires_grad is false, but only "
                                    "the first stage's input may be without gradient",
                                    k, l.name));
    }
    if (l.input_bytes != p.stages[k - 1].output_bytes) {
      throw FormatError(fmt::format("profile: layers[{}] ({}): input_bytes {} differs from the previous "
                                    "stage's output_bytes {}; stages must form a chain",
                                    k, l.name, l.input_bytes, p.stages[k - 1].output_bytes));
    }
  }
  for (const auto& l : p.stages) {
    StageCost s;
    s.name = l.name;
    s.kind = l.kind;
    s.input = l.input_bytes;
    s.out = l.output_bytes;
    s.param = sharded ? 0 : l.param_bytes;
    s.input_grad = l.input_requires_grad;
    s.nograd_peak = l.forward_nograd_peak_bytes;
    s.nograd_ms = l.forward_nograd_ms;
    s.variants.push_back(VariantCost{"", l.saved_bytes, l.forward_peak_bytes, l.backward_peak_bytes,
                                     held_extra(l.backward_held_peak_bytes, l.backward_peak_bytes),
                                     l.forward_ms, l.backward_ms});
    for (const auto& v : l.variants) {
      if (v.name == "full" || v.name == "save") {
        throw FormatError(fmt::format("profile: stage {}: variant name \"{}\" is reserved for the "
                                      "stage's plain form (its own fields)",
                                      l.name, v.name));
      }
      // A variant does the plain stage's work and rebuilds part of it, so it is never faster,
      // nor as fast. A profile that times it no slower (by a rebuild smaller than the timing
      // noise) would have the planner pick it for a speed-up that is not there, or, on a tie,
      // for keeping less (the DP's tie rule) with memory to spare; measured, such plans ran up
      // to 6% slower than keeping everything. It gets the plain stage's times and
      // kRebuildFloorMs more, so a plan takes it only for the memory it frees.
      const bool no_slower = v.forward_ms + v.backward_ms <= l.forward_ms + l.backward_ms;
      s.variants.push_back(VariantCost{v.name, v.saved_bytes, v.forward_peak_bytes,
                                       v.backward_peak_bytes,
                                       held_extra(v.backward_held_peak_bytes, v.backward_peak_bytes),
                                       no_slower ? l.forward_ms : v.forward_ms,
                                       no_slower ? l.backward_ms + kRebuildFloorMs : v.backward_ms});
    }
    c.stages.push_back(std::move(s));
  }
  return c;
}

}  // namespace tidemark::planner
