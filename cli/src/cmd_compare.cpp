// tidemark compare REPORT... : reports side by side (measured, predicted, budget).
#include <fmt/format.h>

#include "commands.hpp"
#include "tidemark/core/bytes.hpp"
#include "tidemark/core/report.hpp"

namespace tidemark::cli {
namespace {

std::string label_of(const Report& r) {
  if (r.mode == "plan") return "plan (" + r.solver + ")";
  if (r.mode == "uniform") return "every block (HF)";
  if (r.command == "profile") return "profile";
  return "no checkpointing";
}

void run_compare(const std::vector<std::string>& paths) {
  std::vector<Report> reports;
  for (const auto& p : paths) reports.push_back(read_report(p));
  const Report* base = nullptr;
  for (const auto& r : reports) {
    if (r.mode == "none") base = &r;
  }
  fmt::print("{:<22} {:>6} {:>15} {:>12} {:>10} {:>9} {:>12} {:>11} {:>12}\n", "run", "steps", "loss first>last",
             "peak", "vs none", "ms/step", "vs none", "pred. peak", "pred. ms");
  for (const auto& r : reports) {
    std::string peak_vs = "", time_vs = "";
    if (base && base != &r && base->peak_bytes > 0 && base->step_ms_median > 0) {
      peak_vs = fmt::format("{:+.1f}%", 100.0 * (static_cast<double>(r.peak_bytes) / base->peak_bytes - 1));
      time_vs = fmt::format("{:+.1f}%", 100.0 * (r.step_ms_median / base->step_ms_median - 1));
    }
    fmt::print("{:<22} {:>6} {:>7.3f}>{:<7.3f} {:>12} {:>10} {:>9.0f} {:>12} {:>11} {:>12}\n", label_of(r), r.steps,
               r.losses.empty() ? 0.0 : r.losses.front(), r.final_loss, format_bytes(r.peak_bytes), peak_vs,
               r.step_ms_median, time_vs, r.predicted ? format_bytes(r.predicted->peak_bytes) : "",
               r.predicted ? fmt::format("{:.0f}", r.predicted->step_ms) : "");
  }
  for (const auto& r : reports) {
    if (!r.predicted || !r.budget_bytes) continue;
    fmt::print("{}: budget {}, measured peak {} ({}), {:+.2f}% against predicted; step {:+.1f}% against predicted\n",
               label_of(r), format_bytes(*r.budget_bytes), format_bytes(r.peak_bytes),
               r.peak_bytes <= *r.budget_bytes ? "within budget" : "OVER BUDGET",
               100.0 * (static_cast<double>(r.peak_bytes) / std::max<double>(1, r.predicted->peak_bytes) - 1),
               100.0 * (r.step_ms_median / std::max(1e-9, r.predicted->step_ms) - 1));
  }
}

}  // namespace

void add_compare_command(CLI::App& app) {
  auto paths = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand("compare", "Print reports (tidemark.report/1) side by side");
  cmd->footer(
      "Example:\n  tidemark compare report-none.json report-uniform.json report-plan.json\n"
      "Differences are against the run without checkpointing, when one is given; a report of\n"
      "a run with a plan also shows how the measured peak and step time compare with the plan's\n"
      "prediction and budget.");
  cmd->add_option("reports", *paths, "report files from train --report or profile --report")->required();
  cmd->callback([paths] { run_compare(*paths); });
}

}  // namespace tidemark::cli
