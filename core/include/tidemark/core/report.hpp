#pragma once
// tidemark.report/1: the outcome of `train --report` or `profile --report`.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tidemark/core/model_config.hpp"
#include "tidemark/core/plan.hpp"

namespace tidemark {

inline constexpr const char* kReportSchema = "tidemark.report";
inline constexpr int kReportVersion = 1;

struct Report {
  std::string command = "train";  // "train" or "profile"
  std::string mode = "none";      // "none", "uniform" (--gradient-checkpointing), "plan"
  std::string solver;             // the plan's solver when mode == "plan"
  ModelConfig config;
  std::string torch_version;
  int threads = 0;
  int steps = 0;
  std::vector<double> losses;
  double final_loss = 0;
  std::uint64_t peak_bytes = 0;         // measured, max over steps
  double step_ms_median = 0;
  std::vector<double> step_ms;
  std::vector<std::uint64_t> step_peak_bytes;
  std::uint64_t recomputes = 0;         // checkpointed segments recomputed in backward
  std::optional<std::uint64_t> budget_bytes;
  std::optional<Prediction> predicted;
  // Data parallel (written for a c10d job, one rank included; config is one rank's, peak_bytes the
  // largest rank's): each rank's measured peak, and the milliseconds per step rank 0
  // waited for gradient all-reduces after its backward.
  int world_size = 1;
  int zero = 0;  // the ZeRO stage (Note [ZeRO]), 0 for plain data parallel
  std::vector<std::uint64_t> rank_peak_bytes;
  // Each rank's live bytes once backward and its reductions are done, before the optimizer
  // step: parameters, gradients, optimizer state and buffers, the batch; no activations.
  std::vector<std::uint64_t> rank_floor_bytes;
  std::vector<double> comm_wait_ms;
};

Report report_from_json(const std::string& text, const std::string& source);
std::string report_to_json(const Report& report);
Report read_report(const std::string& path);
void write_report(const std::string& path, const Report& report);

// Median of `v` (mean of the middle two for even sizes); 0 for an empty vector.
double median(std::vector<double> v);

}  // namespace tidemark
