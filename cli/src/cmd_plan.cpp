// tidemark plan PROFILE --budget B [--solver S] [--k K] [--slots N] -o plan.json
//               [--pareto pareto.csv]
//
// Sections: arguments; checks; the summary printed for people; the command.
#include <fmt/format.h>
#include <memory>

#include "commands.hpp"
#include "tidemark/core/bytes.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/core/files.hpp"
#include "tidemark/core/plan.hpp"
#include "tidemark/core/profile.hpp"
#include "tidemark/planner/baselines.hpp"
#include "tidemark/planner/chain.hpp"
#include "tidemark/planner/pareto.hpp"
#include "tidemark/planner/plan_text.hpp"
#include "tidemark/planner/solve.hpp"

namespace tidemark::cli {
namespace {

using namespace tidemark::planner;

// ---- arguments --------------------------------------------------------------------------

struct PlanArgs {
  std::string profile;
  std::string budget;
  std::string solver = "optimal";
  int k = 0;
  bool k_given = false;
  int slots = 500;
  std::string output;
  std::string pareto;
  std::vector<std::string> compare;
  bool quiet = false;
};

constexpr const char* kFooter = R"(Budget forms:
  --budget 600MiB   bytes with a unit (B, KiB, MiB, GiB, or KB, MB, GB in powers of 1000)
  --budget 0.5      a fraction in (0, 1] of the profile's measured no-checkpoint peak
The budget bounds the whole step's peak of live bytes: parameters, gradients, optimizer
state, inputs, activations and temporaries. A budget below the smallest peak any plan
reaches is refused with that minimum.

Solvers: optimal (default: the fastest plan for the budget, by dynamic program), uniform
(Hugging Face: every block checkpointed), uniform-offload (Hugging Face's offload option:
uniform, each checkpoint's input in pinned host memory), every-k (--k blocks per
checkpoint; without --k the fastest k that fits), sqrt (Chen et al.: segments of
sqrt(blocks)), revolve (Griewank-Walther binomial schedule), none (no checkpointing).

Offload: on a profile made on a CUDA device (it records the host link's bandwidth), the
optimal solver may also keep a stage's saved tensors, or a checkpoint's input, in pinned
host memory between forward and backward, wherever that is faster than recomputing for
the same budget. The budget bounds device memory; the plan says how much host memory it
takes. On the CPU there is nothing to offload to, and no plan offloads.

Examples:
  tidemark plan profile.json --budget 0.5 -o plan.json
  tidemark plan profile.json --budget 600MiB --solver uniform -o uniform.json
  tidemark plan profile.json --budget 0.6 -o plan.json --pareto pareto.csv
  tidemark plan z0.json --budget 300MiB -o plan.json --compare z1.json z2.json z3.json
then: tidemark train --plan plan.json

--compare sets other profiles of the same model beside this one at the same budget in
bytes: profiled with other --nproc or --zero (a fraction is taken of this profile's peak),
it shows which sharding reaches the budget, and at what predicted step time.)";

// ---- checks -----------------------------------------------------------------------------

Solver checked_solver(const PlanArgs& a) {
  // CLI11's IsMember already refused other names; this maps the name.
  const std::optional<Solver> solver = solver_from_name(a.solver);
  if (!solver) throw UserError(fmt::format("--solver {} is not a solver", a.solver));
  if (a.k_given && *solver != Solver::EveryK) {
    throw UserError(fmt::format(
        "--k applies only to --solver every-k, not {}; add --solver every-k or drop --k",
        a.solver));
  }
  if (a.k_given && a.k < 1) {
    throw UserError(fmt::format("--k {} must be at least 1 (blocks per checkpoint segment)", a.k));
  }
  if (a.slots < 1) {
    throw UserError(fmt::format("--slots {} must be at least 1 (default 500)", a.slots));
  }
  return *solver;
}

// ---- summary ----------------------------------------------------------------------------

std::string percent_change(double value, double reference) {
  if (reference <= 0) return "n/a";
  return fmt::format("{:+.1f}%", 100.0 * (value - reference) / reference);
}

void print_summary(const ChainProfile& profile, const ChainCosts& chain, const PlanArgs& args,
                   const Budget& budget, std::uint64_t budget_bytes, const Candidate& plan) {
  // "gpt" in the file names tidemark's own model, of either arch: say which.
  const std::string& model = profile.model == "gpt" ? profile.config.arch : profile.model;
  fmt::print("profile: {} ({}), {} stages, measured no-checkpoint peak {}, step {:.2f} ms\n",
             args.profile, model, chain.size(), format_bytes(chain.measured_peak),
             chain.measured_step_ms);
  fmt::print("budget:  {}{}\n", format_bytes(budget_bytes),
             budget.is_fraction() ? fmt::format(" ({})", budget.describe()) : "");
  // Where the plan came from, when that says more than the solver's name.
  fmt::print("plan ({}{}):\n", args.solver, plan.origin == args.solver ? "" : "; " + plan.origin);
  for (const std::string& line : describe_plan(chain, plan.root)) fmt::print("  {}\n", line);

  const Prediction none = simulate(chain, none_plan(chain));
  const Prediction uniform = simulate(chain, uniform_plan(chain));
  fmt::print("predicted peak: {} of the {} budget ({:.1f}%); no checkpointing peaks at {}\n",
             format_bytes(plan.sim.peak_bytes), format_bytes(budget_bytes),
             100.0 * static_cast<double>(plan.sim.peak_bytes) / static_cast<double>(budget_bytes),
             format_bytes(none.peak_bytes));
  fmt::print(
      "predicted step: {:.2f} ms ({:.2f} ms recompute): {} against no checkpointing "
      "({:.2f} ms), {} against uniform ({:.2f} ms{})\n",
      plan.sim.step_ms, plan.sim.recompute_ms, percent_change(plan.sim.step_ms, none.step_ms),
      none.step_ms, percent_change(plan.sim.step_ms, uniform.step_ms), uniform.step_ms,
      uniform.peak_bytes > budget_bytes
          ? fmt::format(", which peaks at {}, over the budget", format_bytes(uniform.peak_bytes))
          : "");
  if (offloads(plan.root)) {
    fmt::print("offload: at most {} in pinned host memory; {:.2f} ms of copies not hidden behind compute "
               "(host link {:.1f} GB/s out, {:.1f} GB/s in)\n",
               format_bytes(plan.sim.host_peak_bytes), plan.sim.copy_ms, chain.d2h_bytes_per_ms / 1e6,
               chain.h2d_bytes_per_ms / 1e6);
  }
}

// The optimal plan at `budget_bytes` for each profile, side by side (--compare), as text.
std::string comparison(const ChainProfile& first, const std::string& first_path, const std::vector<std::string>& others,
                      std::uint64_t budget_bytes, const SolveOptions& options) {
  struct Row {
    std::string path, sharding, floor, peak, step;
  };
  std::vector<Row> rows;
  auto add = [&](const ChainProfile& p, const std::string& path) {
    Row r{path, p.sharding.known() ? p.sharding.describe() : "not recorded",
          format_bytes(chain_from_profile(p).resident), format_bytes(p.peak_bytes), ""};
    try {
      const Plan plan = planner::plan(p, Budget::bytes(budget_bytes), Solver::Optimal, options);
      r.step = fmt::format("{:.2f} ms (peak {})", plan.predicted.step_ms, format_bytes(plan.predicted.peak_bytes));
    } catch (const InfeasibleBudget& e) {
      r.step = fmt::format("does not fit (from {})", format_bytes(e.minimum_bytes()));
    }
    rows.push_back(std::move(r));
  };
  add(first, first_path);
  for (const auto& path : others) {
    const ChainProfile p = read_profile(path);
    if (p.model != first.model || p.stages.size() != first.stages.size()) {
      throw UserError(fmt::format("--compare {}: a profile of {} with {} stages, not of {} with {} stages as {}; "
                                  "compare profiles of one model",
                                  path, p.model, p.stages.size(), first.model, first.stages.size(), first_path));
    }
    add(p, path);
  }
  std::string out = fmt::format("at {} per rank, the optimal plan of each profile:\n", format_bytes(budget_bytes));
  out += fmt::format("  {:<28} {:<18} {:>12} {:>14}  {}\n", "profile", "sharding", "static", "no-ckpt peak",
                     "predicted step");
  for (const auto& r : rows) {
    out += fmt::format("  {:<28} {:<18} {:>12} {:>14}  {}\n", r.path, r.sharding, r.floor, r.peak, r.step);
  }
  return out;
}

// ---- the command ------------------------------------------------------------------------

void run_plan(const PlanArgs& args) {
  const Solver solver = checked_solver(args);
  const Budget budget = Budget::parse(args.budget);
  check_writable(args.output, "-o");
  if (!args.pareto.empty()) check_writable(args.pareto, "--pareto");

  const ChainProfile profile = read_profile(args.profile);
  const ChainCosts chain = chain_from_profile(profile);
  SolveOptions options;
  options.slots = args.slots;
  options.k = args.k_given ? args.k : 0;

  const Plan plan = planner::plan(profile, budget, solver, options);
  const std::uint64_t budget_bytes = plan.budget_bytes;
  const Candidate chosen = make_candidate(chain, plan.root, plan.solver);
  // Everything that can fail runs before the first write, so an error leaves no file.
  std::string csv;
  if (!args.pareto.empty()) csv = pareto_csv(pareto_sweep(chain, options));
  const std::string compared =
      args.compare.empty() ? "" : comparison(profile, args.profile, args.compare, budget_bytes, options);
  const std::string json = plan_to_json(plan);

  if (!args.quiet) print_summary(profile, chain, args, budget, budget_bytes, chosen);
  write_file_atomic(args.output, json, "-o");
  if (!args.quiet) fmt::print("wrote {}\n", args.output);
  if (!args.pareto.empty()) {
    write_file_atomic(args.pareto, csv, "--pareto");
    if (!args.quiet) fmt::print("wrote {} (budget sweep of every solver)\n", args.pareto);
  }
  fmt::print("{}", compared);  // asked for by name, so printed even with -q
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "plan", "Find the fastest checkpoint plan whose peak memory fits a budget");
  cmd->footer(kFooter);
  auto args = std::make_shared<PlanArgs>();
  std::vector<std::string> solver_names;
  for (Solver s : all_solvers()) solver_names.emplace_back(to_string(s));
  cmd->add_option("profile", args->profile, "tidemark.profile/1 written by 'tidemark profile'")
      ->required();
  cmd->add_option("--budget", args->budget,
                  "peak memory budget: bytes with a unit (600MiB) or a fraction in (0, 1] of "
                  "the no-checkpoint peak (0.5)")
      ->required();
  cmd->add_option("--solver", args->solver, "which planner (default optimal; see below)")
      ->check(CLI::IsMember(solver_names));
  auto* k = cmd->add_option("--k", args->k,
                            "every-k: blocks per checkpoint segment (default: the fastest k "
                            "that fits)");
  cmd->add_option("--slots", args->slots,
                  "optimal: memory slots of the dynamic program (default 500; more is finer "
                  "and slower)");
  cmd->add_option("-o,--output", args->output, "write the plan (tidemark.plan/1) here")->required();
  cmd->add_option("--pareto", args->pareto,
                  "also write predicted peak and step time of every solver for about 20 "
                  "budgets from the minimum to the no-checkpoint peak (CSV)");
  cmd->add_option("--compare", args->compare,
                  "other profiles of this model (other --nproc or --zero): print the optimal plan of each at "
                  "this budget in bytes, beside this one");
  cmd->add_flag("--quiet,-q", args->quiet, "print nothing but errors (and the --compare table)");
  cmd->callback([args, k] {
    args->k_given = k->count() > 0;
    run_plan(*args);
  });
}

}  // namespace tidemark::cli
