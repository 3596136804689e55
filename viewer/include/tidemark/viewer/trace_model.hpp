#pragma once
// The viewer's data model: a loaded tidemark.trace/1 plus the indexes the views need to draw
// a frame in time independent of the trace's size. No ImGui, no GL, no torch: the tests use
// it without a window, and any other front end could.
//
//   memory()      min/max pyramid of the timeline (memory_lod.hpp)
//   lane(stage)   the stage's spans sorted by start, with prefix max of end and per-phase
//                 prefix counts, for visible-range lookup, sub-pixel merging and hit testing
//   stage_stats() per-stage times and plan action for the table
//   peak()        where the measured timeline reaches its maximum
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tidemark/core/trace.hpp"
#include "tidemark/viewer/memory_lod.hpp"

namespace tidemark::viewer {

// A stretch of one lane to draw as one rectangle: a single span, or several spans that
// would each be narrower than the merge width (Tracy's "zones too small to show").
struct LaneRun {
  double start_us = 0;
  double end_us = 0;
  std::uint32_t first = 0;  // positions in the lane (lane(stage)[first..last))
  std::uint32_t last = 0;
  std::array<std::uint32_t, kPhaseCount> phase_count{};  // by Phase
  std::uint32_t count() const { return last - first; }
  Phase dominant_phase() const;
};

struct StageStats {
  int stage = 0;
  std::string name;
  std::string kind;
  std::string action;         // "save", "checkpoint" or a variant name
  std::uint64_t saved_bytes = 0;
  // Mean time per step the stage ran in that phase, in microseconds; 0 when it never did.
  double forward_us = 0;
  double backward_us = 0;
  double recompute_us = 0;
  std::uint32_t forward_count = 0;
  std::uint32_t backward_count = 0;
  std::uint32_t recompute_count = 0;
};

struct PeakInfo {
  bool valid = false;
  std::uint32_t sample = 0;
  std::int64_t t_us = 0;
  std::uint64_t bytes = 0;  // max of the timeline's total
};

class TraceModel {
 public:
  // read_trace + indexes. Throws FormatError / UserError naming the file.
  static std::shared_ptr<const TraceModel> load(const std::string& path);
  static std::shared_ptr<const TraceModel> build(Trace trace, std::string source = "");

  TraceModel(const TraceModel&) = delete;             // the pyramid points into trace_
  TraceModel& operator=(const TraceModel&) = delete;

  const Trace& trace() const { return trace_; }
  const std::string& source() const { return source_; }

  // Extent of everything in the trace (memory, spans, steps).
  std::int64_t begin_us() const { return begin_us_; }
  std::int64_t end_us() const { return end_us_; }

  const MemoryLod& memory() const { return *lod_; }
  const PeakInfo& peak() const { return peak_; }
  // The largest byte count any line or area of this trace reaches (for a shared y scale).
  std::uint64_t y_max_bytes() const;

  // A lane per stage, then, when the trace has offload copies, one for the copies to host
  // and one for the copies back (their spans keep their stage, for the readout).
  int lane_count() const { return static_cast<int>(lanes_.size()); }
  int stage_lane_count() const { return static_cast<int>(trace_.stages.size()); }
  // The stage's name, or "copies to host" / "copies from host".
  const std::string& lane_name(int lane) const;
  // Indices into trace().spans of the lane's spans, sorted by start.
  const std::vector<std::uint32_t>& lane(int stage) const { return lanes_[static_cast<std::size_t>(stage)].spans; }

  // Runs to draw for the lane over [t0, t1): spans narrower than merge_us are merged with
  // their neighbours starting within merge_us. Appends to out. O(runs * log n).
  void lane_runs(int stage, double t0, double t1, double merge_us, std::vector<LaneRun>& out) const;

  // The span of `stage` under time t: the one containing t, else the nearest one within
  // tolerance_us. Index into trace().spans.
  std::optional<std::uint32_t> hit_span(int stage, double t, double tolerance_us) const;

  // The step whose [start, end] contains t, as an index into trace().steps.
  std::optional<std::size_t> step_at(double t) const;

  const std::vector<StageStats>& stage_stats() const { return stats_; }
  std::size_t step_count() const;  // steps listed, or distinct span steps when none are

 private:
  TraceModel(Trace trace, std::string source);

  struct Lane {
    std::vector<std::uint32_t> spans;          // sorted by start
    std::vector<std::int64_t> start;           // start_us, same order
    std::vector<std::int64_t> max_end;         // prefix max of end_us
    std::array<std::vector<std::uint32_t>, kPhaseCount> phase_prefix;  // count of each phase in [0, i)
  };
  // First position whose span may end after t (prefix max end > t).
  std::size_t first_ending_after(const Lane& lane, double t) const;

  Trace trace_;
  std::string source_;
  std::int64_t begin_us_ = 0, end_us_ = 0;
  std::unique_ptr<MemoryLod> lod_;
  PeakInfo peak_;
  std::vector<Lane> lanes_;
  std::vector<StageStats> stats_;
};

}  // namespace tidemark::viewer
