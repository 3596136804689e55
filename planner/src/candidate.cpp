#include "tidemark/planner/candidate.hpp"

namespace tidemark::planner {

Candidate make_candidate(const ChainCosts& chain, PlanNode root, std::string origin) {
  Candidate c;
  c.sim = simulate(chain, root);
  c.root = std::move(root);
  c.origin = std::move(origin);
  return c;
}

const Candidate* fastest_within(const std::vector<Candidate>& pool, std::uint64_t budget) {
  const Candidate* best = nullptr;
  for (const Candidate& c : pool) {
    if (!c.fits(budget)) continue;
    if (!best || c.sim.step_ms < best->sim.step_ms ||
        (c.sim.step_ms == best->sim.step_ms && c.sim.peak_bytes < best->sim.peak_bytes)) {
      best = &c;
    }
  }
  return best;
}

const Candidate* lowest_peak(const std::vector<Candidate>& pool) {
  const Candidate* best = nullptr;
  for (const Candidate& c : pool) {
    if (!best || c.sim.peak_bytes < best->sim.peak_bytes ||
        (c.sim.peak_bytes == best->sim.peak_bytes && c.sim.step_ms < best->sim.step_ms)) {
      best = &c;
    }
  }
  return best;
}

}  // namespace tidemark::planner
