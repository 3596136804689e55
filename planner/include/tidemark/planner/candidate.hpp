#pragma once
// A plan tree with its simulation: what every solver proposes, and how they are compared.
// Solvers never trust their own arithmetic for the final answer: each candidate carries
// simulate()'s verdict, and "fits" always means its simulated peak is within the budget.
#include <cstdint>
#include <string>
#include <vector>

#include "tidemark/core/plan.hpp"
#include "tidemark/planner/chain.hpp"
#include "tidemark/planner/simulator.hpp"

namespace tidemark::planner {

struct Candidate {
  PlanNode root;       // a sequence over [0, L)
  Prediction sim;      // simulate(chain, root)
  std::string origin;  // how it was made: "dynamic program", "every-k k=3", "revolve s=2" ...

  bool fits(std::uint64_t budget) const { return sim.peak_bytes <= budget; }
};

// Simulates `root` and packages it. Throws FormatError if the plan does not fit the chain
// (a solver bug, since solvers build their plans from the chain).
Candidate make_candidate(const ChainCosts& chain, PlanNode root, std::string origin);

// The fastest candidate whose simulated peak fits `budget`; ties go to the lower peak, then
// to the earlier candidate. nullptr when none fits.
const Candidate* fastest_within(const std::vector<Candidate>& pool, std::uint64_t budget);

// The candidate with the lowest simulated peak; ties go to the faster, then the earlier.
// nullptr for an empty pool.
const Candidate* lowest_peak(const std::vector<Candidate>& pool);

}  // namespace tidemark::planner
