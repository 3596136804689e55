#include "tidemark/viewer/memory_lod.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tidemark::viewer {

MemoryLod::MemoryLod(const MemoryTimeline& timeline, std::int64_t end_us) : m_(&timeline), end_us_(end_us) {
  const auto& total = timeline.total;
  std::size_t n = total.size();
  // Level 1 from the samples, each further level from the one below: O(n) in all.
  while (n > 1) {
    Level next;
    const std::size_t blocks = (n + 1) / 2;
    next.at_max.resize(blocks);
    next.min_total.resize(blocks);
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::size_t l = 2 * b, r = 2 * b + 1;
      if (levels_.empty()) {
        std::uint32_t am = static_cast<std::uint32_t>(l);
        std::uint64_t mn = total[l];
        if (r < n) {
          if (total[r] > total[am]) am = static_cast<std::uint32_t>(r);
          mn = std::min(mn, total[r]);
        }
        next.at_max[b] = am;
        next.min_total[b] = mn;
      } else {
        const Level& below = levels_.back();
        std::uint32_t am = below.at_max[l];
        std::uint64_t mn = below.min_total[l];
        if (r < n) {
          if (total[below.at_max[r]] > total[am]) am = below.at_max[r];
          mn = std::min(mn, below.min_total[r]);
        }
        next.at_max[b] = am;
        next.min_total[b] = mn;
      }
    }
    levels_.push_back(std::move(next));
    n = blocks;
  }
}

SampleRange MemoryLod::samples_in(double t0, double t1) const {
  const auto& t = m_->t_us;
  SampleRange r;
  if (t.empty() || t1 <= t0) return r;
  if (t1 <= static_cast<double>(t.front()) || t0 > static_cast<double>(end_us_)) return r;
  // The sample in effect at t0 (the last one starting at or before it), or, when several
  // start exactly at t0, the first of those: a sample that lasted no time at all still
  // belongs to the column holding its time, so that no spike falls between two columns.
  auto first = std::upper_bound(t.begin(), t.end(), t0, [](double v, std::int64_t s) { return v < static_cast<double>(s); });
  if (first != t.begin()) --first;
  auto at_t0 = std::lower_bound(t.begin(), first, t0, [](std::int64_t s, double v) { return static_cast<double>(s) < v; });
  if (at_t0 != first && static_cast<double>(*at_t0) == t0) first = at_t0;
  // One past the last sample starting before t1.
  auto last = std::lower_bound(first, t.end(), t1, [](std::int64_t s, double v) { return static_cast<double>(s) < v; });
  r.first = static_cast<std::uint32_t>(first - t.begin());
  r.last = static_cast<std::uint32_t>(last - t.begin());
  return r;
}

std::int64_t MemoryLod::sample_at(double t) const {
  const auto& ts = m_->t_us;
  if (ts.empty() || t < static_cast<double>(ts.front()) || t > static_cast<double>(end_us_)) return -1;
  auto it = std::upper_bound(ts.begin(), ts.end(), t, [](double v, std::int64_t s) { return v < static_cast<double>(s); });
  return static_cast<std::int64_t>(it - ts.begin()) - 1;
}

void MemoryLod::take(int level, std::size_t block, RangeExtremes& acc, bool& any) const {
  const auto& total = m_->total;
  std::uint32_t am;
  std::uint64_t mn;
  if (level == 0) {
    am = static_cast<std::uint32_t>(block);
    mn = total[block];
  } else {
    const Level& lv = levels_[static_cast<std::size_t>(level - 1)];
    am = lv.at_max[block];
    mn = lv.min_total[block];
  }
  const std::uint64_t mx = total[am];
  if (!any) {
    acc = RangeExtremes{am, mx, mn};
    any = true;
    return;
  }
  // Ties go to the earlier sample so the answer does not depend on how blocks split.
  if (mx > acc.max_total || (mx == acc.max_total && am < acc.at_max)) {
    acc.max_total = mx;
    acc.at_max = am;
  }
  acc.min_total = std::min(acc.min_total, mn);
}

RangeExtremes MemoryLod::extremes(SampleRange range) const {
  RangeExtremes acc;
  bool any = false;
  std::size_t lo = range.first, hi = std::min<std::size_t>(range.last, m_->total.size());
  int level = 0;
  // Bottom-up over aligned blocks: at each level take the odd block at either end, then
  // climb. Every sample of [lo, hi) is covered exactly once.
  while (lo < hi) {
    if (lo & 1) take(level, lo++, acc, any);
    if (hi & 1) take(level, --hi, acc, any);
    lo >>= 1;
    hi >>= 1;
    ++level;
  }
  return acc;
}

void MemoryLod::reduce(double t0, double t1, int columns, std::vector<ColumnSample>& out) const {
  out.assign(static_cast<std::size_t>(std::max(columns, 0)), ColumnSample{});
  if (columns <= 0 || !(t1 > t0)) return;
  const double w = (t1 - t0) / columns;
  for (int c = 0; c < columns; ++c) {
    ColumnSample& col = out[static_cast<std::size_t>(c)];
    col.samples = samples_in(t0 + w * c, t0 + w * (c + 1));
    if (!col.samples.empty()) col.extremes = extremes(col.samples);
  }
}

std::size_t MemoryLod::pyramid_bytes() const {
  std::size_t b = 0;
  for (const auto& l : levels_) b += l.at_max.size() * sizeof(std::uint32_t) + l.min_total.size() * sizeof(std::uint64_t);
  return b;
}

}  // namespace tidemark::viewer
