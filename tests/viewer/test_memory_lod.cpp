// MemoryLod against brute force: every column's max is the true max of the samples in
// effect during the column (never an average or a decimated point), and its min the true
// min, at every zoom, for timelines with repeated times and spikes one sample wide.
#include <algorithm>
#include <cmath>
#include <random>

#include "catch.hpp"
#include "tidemark/viewer/memory_lod.hpp"

using namespace tidemark;
using namespace tidemark::viewer;

namespace {

MemoryTimeline random_timeline(std::mt19937& rng, std::size_t n) {
  MemoryTimeline m;
  std::int64_t t = 10;
  for (std::size_t i = 0; i < n; ++i) {
    t += static_cast<std::int64_t>(rng() % 4);  // 0: repeated times happen in real traces
    std::array<std::uint64_t, kCategoryCount> by{};
    for (auto& b : by) b = rng() % 1000;
    if (rng() % 50 == 0) by[4] += 100000;  // a spike of one sample
    m.push(t, by);
  }
  return m;
}

// The samples in effect at some point of [t0, t1) (Note [Column semantics]), by scanning.
std::vector<std::size_t> brute_samples(const MemoryTimeline& m, std::int64_t end_us, double t0, double t1) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < m.size(); ++i) {
    const double a = static_cast<double>(m.t_us[i]);
    const bool last = i + 1 == m.size();
    const double b = last ? static_cast<double>(end_us) : static_cast<double>(m.t_us[i + 1]);
    // Starts inside the column, or started before it and still holds at t0 (the last
    // sample holds through end_us).
    const bool starts_inside = a >= t0 && a < t1;
    const bool holds_at_t0 = a < t0 && (last ? t0 <= b : t0 < b);
    if (starts_inside || holds_at_t0) out.push_back(i);
  }
  return out;
}

}  // namespace

TEST_CASE("pyramid extremes equal brute force over every range", "[viewer][lod]") {
  std::mt19937 rng(7);
  for (std::size_t n : {1u, 2u, 3u, 5u, 16u, 17u, 100u}) {
    MemoryTimeline m = random_timeline(rng, n);
    MemoryLod lod(m, m.t_us.back() + 5);
    for (std::uint32_t a = 0; a < n; ++a) {
      for (std::uint32_t b = a + 1; b <= n; ++b) {
        RangeExtremes e = lod.extremes(SampleRange{a, b});
        auto first = m.total.begin() + a, last = m.total.begin() + b;
        const auto max_it = std::max_element(first, last);  // first of equal maxima
        INFO("n " << n << " range [" << a << ", " << b << ")");
        CHECK(e.max_total == *max_it);
        CHECK(e.at_max == static_cast<std::uint32_t>(max_it - m.total.begin()));
        CHECK(e.min_total == *std::min_element(first, last));
      }
    }
  }
}

TEST_CASE("level of detail keeps the true max and min of every column at every zoom", "[viewer][lod]") {
  std::mt19937 rng(11);
  MemoryTimeline m = random_timeline(rng, 20000);
  const std::int64_t end_us = m.t_us.back() + 7;
  MemoryLod lod(m, end_us);
  std::vector<ColumnSample> cols;
  const double begin = static_cast<double>(m.t_us.front());
  for (int round = 0; round < 40; ++round) {
    // Zooms from the whole trace down to a few microseconds, at random places.
    const double span = (static_cast<double>(end_us) - begin + 20) / std::pow(2.0, round % 16);
    const double t0 = begin - 10 + (static_cast<double>(rng() % 1000) / 1000.0) * (static_cast<double>(end_us) - begin);
    const int columns = 1 + static_cast<int>(rng() % 300);
    lod.reduce(t0, t0 + span, columns, cols);
    REQUIRE(cols.size() == static_cast<std::size_t>(columns));
    const double w = span / columns;
    for (int c = 0; c < columns; ++c) {
      const auto expect = brute_samples(m, end_us, t0 + w * c, t0 + w * (c + 1));
      const ColumnSample& col = cols[static_cast<std::size_t>(c)];
      INFO("round " << round << " column " << c << " of " << columns);
      REQUIRE(col.samples.empty() == expect.empty());
      if (expect.empty()) continue;
      CHECK(col.samples.first == expect.front());
      CHECK(col.samples.last == expect.back() + 1);
      std::uint64_t mx = 0, mn = UINT64_MAX;
      for (std::size_t i : expect) {
        mx = std::max(mx, m.total[i]);
        mn = std::min(mn, m.total[i]);
      }
      CHECK(col.extremes.max_total == mx);
      CHECK(m.total[col.extremes.at_max] == mx);
      CHECK(col.extremes.min_total == mn);
    }
  }
}

TEST_CASE("a one-sample spike survives any reduction", "[viewer][lod]") {
  MemoryTimeline m;
  for (int i = 0; i < 100000; ++i) {
    std::array<std::uint64_t, kCategoryCount> by{100, 0, 0, 0, static_cast<std::uint64_t>(i % 7), 0};
    if (i == 61234) by[5] = 5000;  // a temporary that lives for one sample
    m.push(i * 3, by);
  }
  MemoryLod lod(m, 300000);
  std::vector<ColumnSample> cols;
  for (int columns : {1, 2, 3, 10, 333, 1600}) {
    lod.reduce(0, 300000, columns, cols);
    std::uint64_t best = 0;
    std::uint32_t at = 0;
    for (const auto& c : cols) {
      if (c.extremes.max_total > best) {
        best = c.extremes.max_total;
        at = c.extremes.at_max;
      }
    }
    CHECK(best == 100 + 61234 % 7 + 5000);
    CHECK(at == 61234u);
  }
}

TEST_CASE("columns outside the data are empty; sample_at follows the step function", "[viewer][lod]") {
  MemoryTimeline m;
  m.push(100, {1, 0, 0, 0, 0, 0});
  m.push(200, {2, 0, 0, 0, 0, 0});
  m.push(200, {3, 0, 0, 0, 0, 0});
  m.push(300, {4, 0, 0, 0, 0, 0});
  MemoryLod lod(m, 400);
  CHECK(lod.samples_in(0, 100).empty());
  CHECK(lod.samples_in(401, 500).empty());
  CHECK(lod.samples_in(350, 360).first == 3);
  CHECK(lod.samples_in(150, 160).first == 0);
  CHECK(lod.samples_in(150, 160).last == 1);
  // The column holding t=200 sees both samples written at 200, whether it starts before
  // 200 or exactly at it; the column before it sees neither.
  const SampleRange r = lod.samples_in(190, 210);
  CHECK(r.first == 0);
  CHECK(r.last == 3);
  CHECK(lod.extremes(r).max_total == 3);
  CHECK(lod.samples_in(200, 210).first == 1);
  CHECK(lod.samples_in(180, 200).last == 1);
  CHECK(lod.sample_at(99) == -1);
  CHECK(lod.sample_at(100) == 0);
  CHECK(lod.sample_at(250) == 2);
  CHECK(lod.sample_at(400) == 3);
  CHECK(lod.sample_at(401) == -1);

  MemoryTimeline empty;
  MemoryLod none(empty, 10);
  std::vector<ColumnSample> cols;
  none.reduce(0, 10, 5, cols);
  for (const auto& c : cols) CHECK(c.samples.empty());
}
