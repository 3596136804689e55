#pragma once
// tidemark.trace/1: what happened during profiled or trained steps, for the viewer and
// for Chrome/Perfetto export. Times are integer microseconds from the trace start.
//
// The memory timeline is columnar (one array per column) so 20 steps of the default model
// stay small; a sample is written after every allocation or free the hook saw, minus
// samples inside a monotone run (which can never hold a peak or a trough).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tidemark/core/model_config.hpp"

namespace tidemark {

inline constexpr const char* kTraceSchema = "tidemark.trace";
inline constexpr int kTraceVersion = 1;

// CopyOut / CopyIn: an offloaded stage's tensors on their way to pinned host memory and back
// (Note [offload runtime] in runtime/offload.hpp), from the copy's launch to the moment the
// step waited for it (out) or first needed it (in). Drawn on lanes of their own.
enum class Phase { Forward, Backward, Recompute, CopyOut, CopyIn };
inline constexpr int kPhaseCount = 5;
inline bool is_copy(Phase p) { return p == Phase::CopyOut || p == Phase::CopyIn; }
const char* to_string(Phase p);

enum class MemoryCategory { Parameter, Gradient, OptimizerState, Input, Activation, Temporary };
inline constexpr int kCategoryCount = 6;
const char* to_string(MemoryCategory c);
inline constexpr std::array<MemoryCategory, kCategoryCount> kAllCategories = {
    MemoryCategory::Parameter,  MemoryCategory::Gradient,   MemoryCategory::OptimizerState,
    MemoryCategory::Input,      MemoryCategory::Activation, MemoryCategory::Temporary};

struct Span {
  int stage = 0;
  Phase phase = Phase::Forward;
  int step = 0;
  std::int64_t start_us = 0;
  std::int64_t end_us = 0;
};

struct MemoryTimeline {
  std::vector<std::int64_t> t_us;
  std::vector<std::uint64_t> total;
  std::array<std::vector<std::uint64_t>, kCategoryCount> category;
  // Pinned host bytes held by offload at each sample: not device memory, so not in `total`
  // or the categories. Empty when the trace has none (JSON "host", written only then).
  std::vector<std::uint64_t> host;

  size_t size() const { return t_us.size(); }
  bool has_host() const { return !host.empty(); }
  void push(std::int64_t t, const std::array<std::uint64_t, kCategoryCount>& by_category, std::uint64_t host_bytes = 0);
};

struct StepMark {
  int step = 0;
  std::int64_t start_us = 0;
  std::int64_t end_us = 0;
  std::uint64_t peak_bytes = 0;
};

// What the run did with a stage, for the viewer's per-stage table.
struct TraceStage {
  std::string name;
  std::string kind;
  std::string action = "save";  // "save", "checkpoint", or a variant name
  std::uint64_t saved_bytes = 0;   // from the profile when one was at hand
};

struct Trace {
  // "gpt": tidemark's model, described by `config`; another name: a user's chain (no config).
  std::string model = "gpt";
  ModelConfig config;
  std::string mode;      // "profile", "none", "uniform", "plan"
  std::string solver;    // plan's solver when mode == "plan"
  std::optional<std::uint64_t> budget_bytes;
  std::optional<std::uint64_t> predicted_peak_bytes;
  std::uint64_t peak_bytes = 0;  // measured
  std::vector<TraceStage> stages;
  std::vector<Span> spans;
  std::vector<StepMark> steps;
  MemoryTimeline memory;
};

Trace trace_from_json(const std::string& text, const std::string& source);
std::string trace_to_json(const Trace& trace);
Trace read_trace(const std::string& path);
void write_trace(const std::string& path, const Trace& trace);

// Chrome trace event JSON: "X" events for spans (one thread per stage), "C" counter events
// with one key per memory category, step markers. Opens in Perfetto and chrome://tracing.
std::string trace_to_chrome_json(const Trace& trace);

}  // namespace tidemark
