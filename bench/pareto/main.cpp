// bench/pareto: profile a model, plan with every solver at a range of budgets, train a few
// steps with every distinct plan, and print measured peak and step time side by side, with
// the predictions. Writes pareto.csv, pareto.svg (measured fronts) and pareto.md.
//
//   build/bench/pareto/bench_pareto [--arch llama --attention chunked --layers 8 ...] [--budgets 8]
//                                   [--steps 4] [--out DIR]
//   ... --at 0.5,0.7 --rounds 9      only the targets' budgets, measured more often
//
// Sections: options; profile and plan; measure; report (table, targets, files).
#include <CLI/CLI.hpp>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <malloc.h>
#include <map>

#include "svg_plot.hpp"
#include "tidemark/core/bytes.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/core/report.hpp"
#include "tidemark/planner/solve.hpp"
#include "tidemark/runtime/profiling.hpp"

using namespace tidemark;

namespace {

// The 25th and 75th percentile of `v` (at least 4 values).
std::pair<double, double> quartiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 4], v[3 * v.size() / 4]};
}

// Half the spread between the 25th and 75th percentile of `v`, relative to its median; 0
// for fewer than 4 values.
double relative_half_iqr(const std::vector<double>& v) {
  if (v.size() < 4) return 0;
  const auto [q1, q3] = quartiles(v);
  const double mid = median(v);
  return mid > 0 ? 0.5 * (q3 - q1) / mid : 0;
}

struct Measured {
  std::int64_t peak = 0;
  std::vector<double> steps_ms;  // every measured step, all rounds
  double ms = 0;                 // their median
  double spread() const { return relative_half_iqr(steps_ms); }
  void add(const Measured& round) {
    peak = std::max(peak, round.peak);
    steps_ms.insert(steps_ms.end(), round.steps_ms.begin(), round.steps_ms.end());
    ms = median(steps_ms);
  }
};

// A column of the table: a solver, on the chain with or without the blocks' variants.
struct Contender {
  std::string name;
  planner::Solver solver;
  bool variants = false;
  const char* color = "black";
  bool no_offload = false;  // plans on the chain without its host link: recompute only
};

struct Trial {
  int contender = 0;
  std::uint64_t budget = 0;
  bool fits = false;  // the solver has a plan whose predicted peak fits
  int plan = -1;      // index into the distinct plans
};

struct PlanRun {
  PlanNode root;
  std::string text;
  Prediction predicted;
  Measured measured;
  // Its median step over that of the no-checkpoint runs just before and after it, per round:
  // drift over the minutes a run takes cancels out of these (Note [paired overhead]).
  std::vector<double> ratios;
  double overhead() const { return median(ratios) - 1; }
};

Measured train_with(const ModelConfig& model, const PlanNode& root, int warmup, int steps) {
  // Each plan starts from a trimmed heap, so the footprint of the plan measured before it
  // (kept by Note [CPU allocator]) does not shape this one's page faults.
  malloc_trim(0);
  runtime::TrainingConfig cfg;
  cfg.model = model;
  cfg.plan = root;
  runtime::Trainer trainer(cfg);
  Measured m;
  for (int i = 0; i < warmup + steps; ++i) {
    auto s = trainer.step();
    m.peak = std::max(m.peak, s.peak_bytes);
    if (i >= warmup) m.steps_ms.push_back(s.ms);
  }
  m.ms = median(m.steps_ms);
  return m;
}

double mib(std::uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }

const char* color_of(planner::Solver s) {
  switch (s) {
    case planner::Solver::Optimal: return "#d62728";
    case planner::Solver::Uniform: return "#1f77b4";
    case planner::Solver::UniformOffload: return "#17becf";
    case planner::Solver::EveryK: return "#2ca02c";
    case planner::Solver::Sqrt: return "#9467bd";
    case planner::Solver::Revolve: return "#ff7f0e";
    case planner::Solver::None: return "#7f7f7f";
  }
  return "black";
}

}  // namespace

int main(int argc, char** argv) {
  // ---- options
  CLI::App app{"checkpoint plans of every solver, measured side by side"};
  ModelConfig model;
  int n_budgets = 8, steps = 3, warmup = 2, iters = 3, rounds = 2;
  std::vector<double> at;  // fractions of the no-checkpoint peak: the only budgets, when given
  bool no_variants = false;
  std::string out_dir = "pareto-out";
  app.add_option("--arch", model.arch, "gpt or llama")->capture_default_str();
  app.add_option("--layers", model.layers)->capture_default_str();
  app.add_option("--d-model", model.d_model)->capture_default_str();
  app.add_option("--heads", model.heads)->capture_default_str();
  app.add_option("--kv-heads", model.kv_heads, "llama: key/value heads (default: --heads)");
  app.add_option("--attention", model.attention, "naive, chunked or sdpa")->capture_default_str();
  app.add_option("--seq", model.seq)->capture_default_str();
  app.add_option("--batch", model.batch)->capture_default_str();
  app.add_option("--dropout", model.dropout)->capture_default_str();
  app.add_option("--device", model.device, "cpu or cuda")->capture_default_str();
  app.add_option("--budgets", n_budgets, "budgets from the minimum to the no-checkpoint peak")->capture_default_str();
  app.add_option("--steps", steps, "measured steps per plan")->capture_default_str();
  app.add_option("--warmup", warmup, "unmeasured steps per plan first")->capture_default_str();
  app.add_option("--iters", iters, "profiled steps")->capture_default_str();
  app.add_option("--rounds", rounds, "passes over all plans, alternating direction (drift evens out)")
      ->capture_default_str();
  app.add_option("--at", at,
                 "measure only at these fractions of the no-checkpoint peak (e.g. --at 0.5,0.7), instead of "
                 "--budgets and the baselines' peaks: fewer plans, so more --rounds in the same time")
      ->delimiter(',')
      ->check(CLI::Range(0.001, 1.0));
  app.add_flag("--no-variants", no_variants, "whole blocks only: no selective-recompute column");
  app.add_option("--out", out_dir, "directory for pareto.csv, pareto.svg, pareto.md")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    model.validate();
    runtime::tune_cpu_allocator();  // Note [CPU allocator]
    runtime::use_all_cores();
    std::filesystem::create_directories(out_dir);

    // ---- profile and plan
    fmt::print("model: {}; {} threads\n", model.describe(), at::get_num_threads());
    runtime::TrainingConfig cfg;
    cfg.model = model;
    ChainProfile profile;
    {
      runtime::Trainer trainer(cfg);
      runtime::ProfileOptions po;
      po.warmup = 2;
      po.iters = iters;
      po.variants = !no_variants;
      profile = runtime::profile_model(trainer, po).profile;
    }
    // Baselines and the block-only optimum plan on the chain without variants.
    ChainProfile blocks_only = profile;
    for (auto& l : blocks_only.stages) l.variants.clear();
    const planner::ChainCosts chain = planner::chain_from_profile(blocks_only);
    const planner::ChainCosts chain_var = planner::chain_from_profile(profile);
    std::vector<Contender> contenders;
    for (planner::Solver s : planner::solvers_for(chain_var)) contenders.push_back({planner::to_string(s), s, false, color_of(s)});
    if (!no_variants) contenders.push_back({"optimal+variants", planner::Solver::Optimal, true, "#8c564b"});
    // With a host link (CUDA) the optimal solvers may offload: the same solver without it is
    // the recompute-only front the offload targets compare with.
    planner::ChainCosts chain_recompute = chain_var;
    chain_recompute.d2h_bytes_per_ms = chain_recompute.h2d_bytes_per_ms = 0;
    if (chain_var.can_offload()) {
      contenders.push_back({"recompute only", planner::Solver::Optimal, true, "#bcbd22", true});
    }
    const std::uint64_t lo = std::min(planner::minimum_peak(chain), planner::minimum_peak(chain_var));
    const std::uint64_t hi = profile.peak_bytes;
    // A fraction of the peak in thousandths, in integers, so 0.5 and 0.7 give exactly the
    // target budgets below.
    auto fraction_of_peak = [hi](double f) {
      return hi * static_cast<std::uint64_t>(std::llround(f * 1000)) / 1000;
    };
    const auto uniform = planner::baseline_choice(chain, planner::Solver::Uniform, hi);
    // The selective-recompute targets, 50% and 70% of the no-checkpoint peak.
    const std::uint64_t half = fraction_of_peak(0.5), seventy = fraction_of_peak(0.7);
    std::vector<std::uint64_t> budgets;
    if (!at.empty()) {
      for (double f : at) budgets.push_back(fraction_of_peak(f));
    } else {
      for (int i = 0; i < n_budgets; ++i) {
        budgets.push_back(lo + (hi - lo) * static_cast<std::uint64_t>(i) / static_cast<std::uint64_t>(n_budgets - 1));
      }
      // Also exactly where uniform and every-2 peak (the targets compare optimal there), and at
      // the targets.
      const auto every2 = planner::baseline_choice(chain, planner::Solver::EveryK, hi, 2);
      for (std::uint64_t b : {uniform.sim.peak_bytes, every2.sim.peak_bytes, half, seventy}) {
        if (b >= lo && b <= hi) budgets.push_back(b);
      }
    }
    std::sort(budgets.begin(), budgets.end());
    budgets.erase(std::unique(budgets.begin(), budgets.end()), budgets.end());

    std::vector<PlanRun> plans;
    std::map<std::string, int> plan_index;
    std::vector<Trial> trials;
    for (std::uint64_t budget : budgets) {
      for (int ci = 0; ci < static_cast<int>(contenders.size()); ++ci) {
        const Contender& con = contenders[static_cast<size_t>(ci)];
        Trial t{ci, budget};
        try {
          planner::Candidate c =
              planner::solve(con.no_offload ? chain_recompute : con.variants ? chain_var : chain, con.solver, budget);
          t.fits = true;
          const std::string text = describe(c.root);
          auto [it, inserted] = plan_index.emplace(text, static_cast<int>(plans.size()));
          if (inserted) plans.push_back(PlanRun{c.root, text, planner::simulate(chain_var, c.root), {}});
          t.plan = it->second;
        } catch (const InfeasibleBudget&) {
        }
        trials.push_back(t);
      }
    }

    // ---- measure
    // Note [paired overhead]
    // Step times on a shared machine drift by 10-20% over minutes, more than the overheads
    // compared here. So each plan runs between two no-checkpoint runs, and its overhead is
    // its median step over the mean of theirs, per round; the rounds alternate direction and
    // their median is reported. The noise of such a ratio is that of two no-checkpoint runs
    // next to each other: the half inter-quartile spread of their ratios over the run.
    const PlanNode none_root = PlanNode::sequence(0, chain.size(), {PlanNode::save(0, chain.size())});
    fmt::print("profiled: no-checkpoint peak {}, step {:.0f} ms; minimum peak {}; {} budgets, {} distinct plans\n",
               format_bytes(hi), profile.step_ms, format_bytes(lo), budgets.size(), plans.size());
    Measured none;
    std::vector<double> none_pairs;  // each no-checkpoint run's median over the one before it
    double last_none = 0;
    auto measure_none = [&] {
      const Measured m = train_with(model, none_root, warmup, steps);
      if (last_none > 0) none_pairs.push_back(m.ms / last_none);
      last_none = m.ms;
      none.add(m);
      return m.ms;
    };
    for (int r = 0; r < rounds; ++r) {
      double before = measure_none();
      for (size_t n = 0; n < plans.size(); ++n) {
        const size_t i = r % 2 == 0 ? n : plans.size() - 1 - n;
        const Measured m = train_with(model, plans[i].root, warmup, steps);
        const double after = measure_none();
        plans[i].measured.add(m);
        plans[i].ratios.push_back(m.ms / (0.5 * (before + after)));
        before = after;
        fmt::print(stderr, "  round {} plan {}/{}: {:.0f} ms ({:+.1f}% against no checkpointing), peak {}  {}\n", r + 1,
                   n + 1, plans.size(), m.ms, 100 * (plans[i].ratios.back() - 1),
                   format_bytes(static_cast<std::uint64_t>(m.peak)), plans[i].text);
      }
    }
    const double none_ms = none.ms;
    double step_noise = none.spread();
    for (const auto& p : plans) step_noise = std::max(step_noise, p.measured.spread());
    const double noise = none_pairs.size() < 4 ? step_noise : relative_half_iqr(none_pairs);

    // ---- report: table
    std::string md;
    auto row = [&](const std::string& line) {
      fmt::print("{}\n", line);
      md += line + "\n";
    };
    std::string header = "| budget |";
    std::string rule = "|---:|";
    for (const Contender& c : contenders) {
      header += fmt::format(" {} |", c.name);
      rule += "---:|";
    }
    row(fmt::format("\nmeasured peak MiB / median step ms (overhead against the no-checkpoint runs beside it, "
                    "Note [paired overhead]; no checkpointing: median {:.0f} ms); '-' = the solver has no plan "
                    "that fits",
                    none_ms));
    row(header);
    row(rule);
    std::ofstream csv(out_dir + "/pareto.csv");
    csv << "solver,budget_bytes,fits,predicted_peak_bytes,measured_peak_bytes,predicted_step_ms,"
           "measured_step_ms,measured_overhead_pct,plan\n";
    for (std::uint64_t budget : budgets) {
      std::string line = fmt::format("| {:.1f} MiB ({:.2f}) |", mib(budget), static_cast<double>(budget) / hi);
      for (const Trial& t : trials) {
        if (t.budget != budget) continue;
        if (!t.fits) {
          line += " - |";
          csv << fmt::format("{},{},0,,,,,,\n", contenders[t.contender].name, budget);
          continue;
        }
        const PlanRun& p = plans[t.plan];
        line += fmt::format(" {:.1f} / {:.0f} ({:+.0f}%) |", mib(static_cast<std::uint64_t>(p.measured.peak)),
                            p.measured.ms, 100 * p.overhead());
        csv << fmt::format("{},{},1,{},{},{:.2f},{:.2f},{:.2f},\"{}\"\n", contenders[t.contender].name, budget,
                           p.predicted.peak_bytes, p.measured.peak, p.predicted.step_ms, p.measured.ms,
                           100 * p.overhead(), p.text);
      }
      row(line);
    }

    // ---- report: the optimal plan, predicted against measured
    const double none_predicted = planner::simulate(chain_var, none_root).step_ms;
    row("\noptimal plans per budget: predicted against measured");
    row("| budget | solver | plan | predicted peak | measured peak | predicted ms | measured ms | predicted overhead | "
        "measured overhead |");
    row("|---:|:---|:---|---:|---:|---:|---:|---:|---:|");
    for (const Trial& t : trials) {
      const Contender& con = contenders[t.contender];
      if (con.solver != planner::Solver::Optimal || !t.fits) continue;
      const PlanRun& p = plans[t.plan];
      row(fmt::format("| {:.1f} MiB | {} | `{}` | {:.1f} MiB | {:.1f} MiB | {:.0f} | {:.0f} | {:+.1f}% | {:+.1f}% |",
                      mib(t.budget), con.name, p.text, mib(p.predicted.peak_bytes),
                      mib(static_cast<std::uint64_t>(p.measured.peak)), p.predicted.step_ms, p.measured.ms,
                      100 * (p.predicted.step_ms / none_predicted - 1), 100 * p.overhead()));
    }

    // ---- report: prediction accuracy and the targets
    // Step times drift on shared machines over the minutes this runs, so the time prediction
    // is also judged as an overhead against the no-checkpoint runs beside each plan.
    double worst_peak = 0, worst_ms = 0, worst_ratio = 0;
    bool over_budget = false;
    for (const Trial& t : trials) {
      if (!t.fits) continue;
      const PlanRun& p = plans[t.plan];
      worst_peak = std::max(worst_peak, std::abs(static_cast<double>(p.measured.peak) - p.predicted.peak_bytes) /
                                            static_cast<double>(p.measured.peak));
      worst_ms = std::max(worst_ms, std::abs(p.measured.ms - p.predicted.step_ms) / p.measured.ms);
      const double measured_ratio = 1 + p.overhead(), predicted_ratio = p.predicted.step_ms / none_predicted;
      worst_ratio = std::max(worst_ratio, std::abs(measured_ratio - predicted_ratio) / measured_ratio);
      over_budget = over_budget || static_cast<std::uint64_t>(p.measured.peak) > t.budget;
    }
    row(fmt::format("\nrun noise: {:.1f}% between no-checkpoint runs side by side (Note [paired overhead]); "
                    "{:.1f}% the largest half inter-quartile spread of one plan's step times",
                    100 * noise, 100 * step_noise));
    row(fmt::format("prediction: peak within {:.2f}% of measured; step time within {:.1f}% (the overhead, as a "
                    "ratio to the no-checkpoint runs beside it: within {:.1f}%); measured peak over its budget: {}",
                    100 * worst_peak, 100 * worst_ms, 100 * worst_ratio, over_budget ? "YES" : "never"));
    // Each optimal column against every column it should never lose to at the same budget:
    // block-only optimal against the baselines; with variants, against all of them.
    auto trial_at = [&](std::uint64_t budget, int contender) -> const Trial* {
      for (const Trial& t : trials) {
        if (t.budget == budget && t.contender == contender && t.fits) return &t;
      }
      return nullptr;
    };
    for (int oi = 0; oi < static_cast<int>(contenders.size()); ++oi) {
      const Contender& opt_con = contenders[static_cast<size_t>(oi)];
      if (opt_con.solver != planner::Solver::Optimal) continue;
      int slower = 0;
      for (std::uint64_t budget : budgets) {
        const Trial* opt = trial_at(budget, oi);
        if (!opt) continue;
        const double opt_ratio = 1 + plans[opt->plan].overhead();
        for (int ci = 0; ci < static_cast<int>(contenders.size()); ++ci) {
          const Trial* t = trial_at(budget, ci);
          if (ci == oi || !t || (contenders[static_cast<size_t>(ci)].variants && !opt_con.variants)) continue;
          if (static_cast<std::uint64_t>(plans[t->plan].measured.peak) > budget) continue;
          const double other_ratio = 1 + plans[t->plan].overhead();
          if (opt_ratio > other_ratio * (1 + noise)) {
            ++slower;
            row(fmt::format("  {} slower than {} at {}: {:+.1f}% against {:+.1f}%", opt_con.name,
                            contenders[static_cast<size_t>(ci)].name, format_bytes(budget), 100 * (opt_ratio - 1),
                            100 * (other_ratio - 1)));
          }
        }
      }
      row(fmt::format("{} slower than another fitting column beyond the noise: {} times", opt_con.name, slower));
    }
    if (!no_variants) {
      // The selective-recompute targets: measured overhead at 50% and 70% of the peak.
      for (auto [budget, label] : {std::pair{half, "50%"}, std::pair{seventy, "70%"}}) {
        // --at without this target: not measured, which is not "no plan".
        if (!std::binary_search(budgets.begin(), budgets.end(), budget)) continue;
        std::string line = fmt::format("at {} of the no-checkpoint peak ({}):", label, format_bytes(budget));
        for (int ci = 0; ci < static_cast<int>(contenders.size()); ++ci) {
          if (contenders[static_cast<size_t>(ci)].solver != planner::Solver::Optimal) continue;
          const Trial* t = trial_at(budget, ci);
          if (!t) {
            line += fmt::format(" {} has no plan", contenders[static_cast<size_t>(ci)].name);
            continue;
          }
          // With enough rounds, the quartiles of the plan's own per-round overheads: how far
          // its median could move in another run of this length.
          const std::vector<double>& r = plans[t->plan].ratios;
          std::string spread;
          if (r.size() >= 4) {
            const auto [q1, q3] = quartiles(r);
            spread = fmt::format("; its {} rounds' quartiles {:+.1f}% to {:+.1f}%", r.size(), 100 * (q1 - 1),
                                 100 * (q3 - 1));
          }
          line += fmt::format(" {} {:+.1f}% (± {:.1f}%{})", contenders[static_cast<size_t>(ci)].name,
                              100 * plans[t->plan].overhead(), 100 * noise, spread);
        }
        row(line);
      }
    }
    const Measured uni = train_with(model, uniform.root, 1, 1);
    row(fmt::format("optimal's feasible minimum {} against uniform's measured peak {}: {}", format_bytes(lo),
                    format_bytes(static_cast<std::uint64_t>(uni.peak)),
                    lo < static_cast<std::uint64_t>(uni.peak) ? "below" : "NOT below"));

    // ---- files: SVG of the measured fronts
    std::vector<SvgSeries> series;
    for (int ci = 0; ci < static_cast<int>(contenders.size()); ++ci) {
      const Contender& con = contenders[static_cast<size_t>(ci)];
      SvgSeries ser{con.name, con.color, {}, con.solver == planner::Solver::Optimal};
      std::map<int, bool> seen;
      for (const Trial& t : trials) {
        if (t.contender != ci || !t.fits || seen[t.plan]) continue;
        seen[t.plan] = true;
        const auto& p = plans[t.plan];
        ser.points.push_back({mib(static_cast<std::uint64_t>(p.measured.peak)), 100 * p.overhead()});
      }
      std::sort(ser.points.begin(), ser.points.end());
      if (!ser.points.empty()) series.push_back(ser);
    }
    std::ofstream(out_dir + "/pareto.svg")
        << svg_plot(fmt::format("Measured step-time overhead against peak memory ({})", model.describe()),
                    "measured peak (MiB)", "step-time overhead (%)", series);
    std::ofstream(out_dir + "/pareto.md") << md;
    fmt::print("\nwrote {0}/pareto.csv, {0}/pareto.svg, {0}/pareto.md\n", out_dir);
    return 0;
  } catch (const UserError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  }
}
