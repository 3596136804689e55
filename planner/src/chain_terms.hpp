#pragma once
// Private: the byte and time terms of Note [optimal recurrence] (dp.hpp), one place for
// the derivation that both the time program (dp.cpp) and the minimum-peak recursion
// (min_peak.cpp) read.
//
// Note [recurrence terms]
// Derived from Note [execution model] (simulator.hpp) for a list over [i, j) starting at
// live level B, with a_i and the gradient of a_j live; y_k = out(k), p_k = param(k),
// gx_k = grad_in(k), P(a..b) = sum of p over [a, b).
// Save stage i (variant with s, f, b): forward peaks at B + f, then B + y_i + s stays live
// while the rest [i+1, j) runs. The rest frees everything it made except its parameter
// gradients P(i+1..j) and the gradient of a_{i+1}; it frees a_{i+1} itself, and its final
// output either is dropped (inner list) or is the loss the caller keeps (top level, whose
// gradient stays held until backward returns). Every free of the rest's comes after its
// last peak. So stage i's backward peaks at B + s + P(i+1..j) + gx_{i+1} (+ the loss at
// top level) + b. With no rest (i+1 == j) it peaks at B + s + b + h (h: the held extra,
// the gradient of a_j being held), plus y_i at top level where the output is the kept loss.
// Checkpoint [i, k): the no-grad forward of stage t peaks at B + (a_t if t > i) + fn_t
// (it frees a_t once stage t ran), a_k = y_{k-1} stays live while the rest [k, j) runs,
// which leaves P(k..j) + gx_k, and the inner list over [i, k) runs on top of that.
// The checkpoint's state r adds to all three (see ChainTerms::checkpoint).
// Offloaded first nodes (Note [offload], simulator.hpp; top-level lists only, j == L):
// save i keeps y_i only while the rest runs (s is on the host) and pays the copies' exposed
// time; checkpoint [i, k) also frees a_i while the rest runs (`released`, so the rest starts
// below B + keep), and a_i is back before its inner list starts, so the other terms stay.
#include <cstdint>
#include <vector>

#include "tidemark/planner/chain.hpp"

namespace tidemark::planner::detail {

struct SaveTerms {
  std::uint64_t forward = 0;   // peak above B during the stage's forward
  std::uint64_t keep = 0;      // live above B while the rest of the list runs
  std::uint64_t backward = 0;  // peak above B during the stage's backward
  double ms = 0;               // forward + backward time
};

struct CheckpointTerms {
  std::uint64_t forward = 0;     // peak above B during the no-grad forward
  std::uint64_t keep = 0;        // a_k, live above B while the rest runs
  std::uint64_t inner_base = 0;  // live above B when the inner list starts
  std::uint64_t released = 0;    // offloaded: a_i, off the device while the rest runs
  double ms = 0;                 // no-grad forward time (and an offload's exposed copies)
};

class ChainTerms {
 public:
  explicit ChainTerms(const ChainCosts& chain);

  int stages() const { return n_; }
  int variants(int i) const { return static_cast<int>(chain_.stages[i].variants.size()); }
  // First node save stage i (variant v) of a list over [i, j); j == stages() is top level.
  SaveTerms save(int i, int v, int j) const;
  // First node checkpoint [i, k) of a list over [i, j), i < k < j.
  CheckpointTerms checkpoint(int i, int k, int j) const;
  // Their offloaded forms, first node of a top-level list [i, L); the checkpoint needs i > 0.
  SaveTerms save_offloaded(int i, int v) const;
  CheckpointTerms checkpoint_offloaded(int i, int k) const;
  // Whether a list over [i, j) may start with an offloaded save / checkpoint.
  bool offload_save(int j) const { return j == n_ && chain_.can_offload(); }
  bool offload_checkpoint(int i, int j) const { return i > 0 && offload_save(j); }

  // Every first node of a list over [i, j), always in this order (the time program's fill and
  // reconstruction rely on it to break ties alike): save stage i with each variant, then the
  // same offloaded where allowed; checkpoint [i, k) for each k, then the same offloaded.
  // save(v, SaveTerms, offload); checkpoint(k, CheckpointTerms, offload).
  template <class Save, class Checkpoint>
  void for_each_first(int i, int j, Save&& on_save, Checkpoint&& on_checkpoint) const {
    for (int v = 0; v < variants(i); ++v) on_save(v, save(i, v, j), false);
    if (offload_save(j)) {
      for (int v = 0; v < variants(i); ++v) on_save(v, save_offloaded(i, v), true);
    }
    for (int k = i + 1; k < j; ++k) on_checkpoint(k, checkpoint(i, k, j), false);
    if (offload_checkpoint(i, j)) {
      for (int k = i + 1; k < j; ++k) on_checkpoint(k, checkpoint_offloaded(i, k), true);
    }
  }

 private:
  std::uint64_t forward_phase(std::uint64_t peak, int j) const;
  std::uint64_t params(int a, int b) const { return param_prefix_[b] - param_prefix_[a]; }
  std::size_t at(int i, int k) const { return static_cast<std::size_t>(i) * (n_ + 1) + k; }

  const ChainCosts& chain_;
  int n_;
  std::vector<std::uint64_t> param_prefix_;  // [k]: P(0..k)
  std::vector<std::uint64_t> nograd_peak_;   // [at(i, k)]: no-grad forward peak of [i, k)
  std::vector<double> nograd_ms_;            // [at(i, k)]: its time
};

}  // namespace tidemark::planner::detail
