// bench_plan_solve: how long the optimal planner takes on chains of 12, 48, 100 and 200
// stages at 500 memory slots (the target: under 1 s at 100 stages).
//
// The chains are GPT-shaped and heterogeneous (embedding, blocks whose sizes and times vary
// at random, head), with selective-recompute variants on every block, so the program weighs
// several save forms per block as on a real profile: 1 variant per block, and 17 (the most a
// block has: naive attention with dropout, Note [block variants]). The budget is halfway
// between the exact minimum peak and the no-checkpoint peak.
//
// Usage: bench_plan_solve [runs]     (default 5; the table shows the median and the min)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "tidemark/planner/baselines.hpp"
#include "tidemark/planner/dp.hpp"
#include "tidemark/planner/solve.hpp"

using namespace tidemark::planner;

namespace {

ChainCosts synthetic_chain(int stages, int variants, unsigned seed) {
  std::mt19937 rng(seed);
  auto vary = [&](double x) {  // +-30%
    return static_cast<std::uint64_t>(x * std::uniform_real_distribution<double>(0.7, 1.3)(rng));
  };
  const double act = 4.0 * 1024 * 1024;  // one activation: batch * seq * d_model * 4 bytes
  ChainCosts c;
  c.optimizer_peak = 50u << 20;
  c.fixed_ms = 20;
  for (int k = 0; k < stages; ++k) {
    StageCost s;
    const bool first = k == 0, last = k == stages - 1;
    s.name = first ? "embedding" : last ? "head" : "block." + std::to_string(k - 1);
    s.kind = first || last ? s.name : "block";
    s.input = first ? 64 * 1024 : c.stages[k - 1].out;
    s.input_grad = !first;
    s.out = last ? 4 : static_cast<std::uint64_t>(act);
    s.param = vary(3.0 * act);  // d_model^2 * 12 * 4 bytes against batch * seq * d_model * 4
    s.nograd_peak = vary(6 * act);
    const double fwd = std::uniform_real_distribution<double>(1.5, 3.0)(rng);
    s.nograd_ms = fwd * 0.95;
    VariantCost plain{"", vary(16 * act), 0, 0, 0, fwd, 2.1 * fwd};
    plain.forward_peak = plain.saved + vary(4 * act);
    plain.backward_peak = s.param + vary(6 * act);
    s.variants.push_back(plain);
    for (int v = 1; v <= variants && !first && !last; ++v) {
      // Keeping less costs more recompute in backward, with some noise in both.
      const double share = static_cast<double>(v) / variants;
      VariantCost part = plain;
      part.name = "variant-" + std::to_string(v);
      part.saved = vary(static_cast<double>(plain.saved) * (1 - 0.65 * share));
      part.forward_peak = part.saved + vary(4 * act);
      part.backward_ms = plain.backward_ms + 0.35 * fwd * share * std::uniform_real_distribution<double>(0.8, 1.2)(rng);
      s.variants.push_back(part);
    }
    c.stages.push_back(s);
  }
  for (const StageCost& s : c.stages) c.resident += 3 * s.param;  // parameters and Adam state
  const tidemark::Prediction none = simulate(c, none_plan(c));
  c.measured_peak = none.peak_bytes;
  c.measured_step_ms = none.step_ms;
  return c;
}

template <class F>
double median_ms(int runs, std::vector<double>& all, F&& f) {
  all.clear();
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    all.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<double> sorted = all;
  std::sort(sorted.begin(), sorted.end());
  return sorted[sorted.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const int slots = 500;
  std::printf("optimal planner solve time, %d slots, median (min) of %d runs\n", slots, runs);
  std::printf("%7s %9s %10s %14s %14s %20s %20s\n", "stages", "variants", "table", "min peak (ms)",
              "dp table (ms)", "optimal solve (ms)", "overhead vs none");
  for (int variants : {1, 17})
  for (int stages : {12, 48, 100, 200}) {
    const ChainCosts c = synthetic_chain(stages, variants, 42);
    const std::uint64_t minimum = minimum_peak(c);
    const std::uint64_t budget = minimum + (c.measured_peak - minimum) / 2;
    const std::uint64_t slot = slot_bytes_for(c, budget, slots);
    std::vector<double> times;
    volatile std::uint64_t sink = 0;
    const double t_min = median_ms(runs, times, [&] { sink = sink + minimum_peak(c); });
    const double min_min = *std::min_element(times.begin(), times.end());
    const double t_dp = median_ms(runs, times, [&] {
      const OptimalDp dp(c, slot, slots);
      sink = sink + static_cast<std::uint64_t>(dp.best_ms(slots));
    });
    const double dp_min = *std::min_element(times.begin(), times.end());
    Candidate chosen;
    SolveOptions options;
    options.slots = slots;
    const double t_solve =
        median_ms(runs, times, [&] { chosen = solve(c, Solver::Optimal, budget, options); });
    const double solve_min = *std::min_element(times.begin(), times.end());
    const double overhead = 100.0 * (chosen.sim.step_ms - c.measured_step_ms) / c.measured_step_ms;
    std::printf("%7d %9d %7.1f MB %6.1f (%5.1f) %6.1f (%5.1f) %11.1f (%6.1f) %19.1f%%\n", stages, variants,
                static_cast<double>(OptimalDp::table_bytes(stages, slots)) / 1e6, t_min, min_min,
                t_dp, dp_min, t_solve, solve_min, overhead);
  }
  return 0;
}
