#pragma once
// Level of detail for the memory timeline: one ColumnSample per pixel column, in time
// independent of the number of samples, that keeps the true maximum of every column.
//
// Note [Column semantics]
// The timeline is a step function: sample i holds from t_us[i] until t_us[i+1], the last
// one until the end of the trace. A column [t0, t1) therefore covers the sample in effect at
// t0 and every sample that starts inside it (several samples may share one time: all of
// them, so a spike that lasted no time still lands in exactly one column). Its max_total is the exact maximum of total over
// those samples (never an average, never a decimated point), and `at_max` names the sample
// that reaches it, so the view can draw that sample's per-category composition: the stack's
// top is the true peak of the column and its bands are the real split at that moment.
//
// Range queries go through a pyramid of aligned power-of-two blocks (argmax of total, min of
// total): O(log n) per column, so a frame costs the same at any zoom and for any trace size.
#include <cstdint>
#include <vector>

#include "tidemark/core/trace.hpp"

namespace tidemark::viewer {

struct SampleRange {
  std::uint32_t first = 0;  // first sample
  std::uint32_t last = 0;   // one past the last sample; empty when first == last
  bool empty() const { return first >= last; }
};

struct RangeExtremes {
  std::uint32_t at_max = 0;   // sample index holding max_total (the first such)
  std::uint64_t max_total = 0;
  std::uint64_t min_total = 0;
};

struct ColumnSample {
  SampleRange samples;  // empty: no memory data under this column
  RangeExtremes extremes;
};

class MemoryLod {
 public:
  // Keeps a pointer to `timeline`, which must outlive this object and not change.
  // `end_us` is where the last sample stops holding (the end of the trace).
  MemoryLod(const MemoryTimeline& timeline, std::int64_t end_us);

  const MemoryTimeline& timeline() const { return *m_; }
  std::int64_t end_us() const { return end_us_; }

  // Samples in effect at some point of [t0, t1) (Note [Column semantics]).
  SampleRange samples_in(double t0, double t1) const;
  // The sample in effect at t, or -1 before the first sample or after end_us.
  std::int64_t sample_at(double t) const;

  // Max and min of total over samples [first, last); range must not be empty.
  RangeExtremes extremes(SampleRange range) const;

  // `columns` equal columns covering [t0, t1). Reuses `out`'s storage.
  void reduce(double t0, double t1, int columns, std::vector<ColumnSample>& out) const;

  // Bytes held by the pyramid (for the benchmark's report).
  std::size_t pyramid_bytes() const;

 private:
  void take(int level, std::size_t block, RangeExtremes& acc, bool& any) const;

  const MemoryTimeline* m_;
  std::int64_t end_us_;
  // levels_[k-1] covers blocks of 2^k samples; level 0 is the samples themselves.
  struct Level {
    std::vector<std::uint32_t> at_max;
    std::vector<std::uint64_t> min_total;
  };
  std::vector<Level> levels_;
};

}  // namespace tidemark::viewer
