#pragma once
// Reference beside fast: every plan tree of a small chain, simulated, to check the dynamic
// program against (tests) on chains of up to kMaxBruteForceStages stages.
//
// The trees enumerated: node lists whose nodes are single-stage saves (each variant) and
// checkpoints [a, b) over every inner list of [a, b), including checkpoints that cover the
// rest of their list, which the dynamic program leaves out; with a host link, every
// top-level node also offloaded (a checkpoint of stage 0 excepted). Two kinds of trees are left
// out because they execute exactly like trees that are in: a save over several stages
// (it runs as saves of each stage), and a checkpoint whose inner list is one checkpoint
// over the same range (the simulator would run the same forward twice; no schedule wants
// it, and the count of trees would be infinite).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "tidemark/planner/candidate.hpp"
#include "tidemark/planner/chain.hpp"

namespace tidemark::planner {

inline constexpr int kMaxBruteForceStages = 8;

class BruteForce {
 public:
  // Enumerates and simulates every tree. Throws UserError above kMaxBruteForceStages.
  explicit BruteForce(const ChainCosts& chain);

  std::size_t plans() const { return plans_; }
  // The lowest simulated peak of any tree.
  std::uint64_t minimum_peak() const;
  // The fastest tree whose simulated peak fits `budget` (ties: lower peak), or nullopt.
  std::optional<Candidate> fastest_within(std::uint64_t budget) const;
  // The Pareto front: peaks rising, step times falling.
  const std::vector<Candidate>& front() const { return front_; }

 private:
  void offer(const ChainCosts& chain, PlanNode root);

  std::size_t plans_ = 0;
  std::vector<Candidate> front_;
};

}  // namespace tidemark::planner
