#include "tidemark/profiler/memory_timeline.hpp"

#include <algorithm>

namespace tidemark::profiler {

void TimelineBuilder::seed(
    std::int64_t live_total,
    const std::vector<std::pair<const void*, std::pair<std::int64_t, MemoryCategory>>>& known) {
  std::int64_t covered = 0;
  for (const auto& [ptr, sc] : known) {
    if (live_.count(ptr)) continue;  // shared storage (tied weights) counts once
    live_[ptr] = Live{sc.first, sc.second};
    level_[static_cast<int>(sc.second)] += sc.first;
    covered += sc.first;
  }
  level_[static_cast<int>(MemoryCategory::Input)] += std::max<std::int64_t>(0, live_total - covered);
}

void TimelineBuilder::emit(std::int64_t t_ns) {
  std::array<std::uint64_t, kCategoryCount> v{};
  for (int c = 0; c < kCategoryCount; ++c) v[c] = static_cast<std::uint64_t>(std::max<std::int64_t>(0, level_[c]));
  t_.push_back((t_ns - origin_ns_) / 1000);
  levels_.push_back(v);
  hosts_.push_back(static_cast<std::uint64_t>(std::max<std::int64_t>(0, host_)));
}

void TimelineBuilder::add_step(const std::vector<MemoryEvent>& events, const std::vector<OpRecord>& ops,
                               const std::vector<RolePointers>& roles) {
  // Pass 1: pair each allocation with its free (if any, within this step).
  const size_t n = events.size();
  std::vector<std::int64_t> free_time(n, INT64_MAX);
  {
    std::unordered_map<const void*, size_t> open;
    for (size_t i = 0; i < n; ++i) {
      const auto& e = events[i];
      if (e.host) continue;
      if (e.delta > 0) {
        open[e.ptr] = i;
      } else {
        auto it = open.find(e.ptr);
        if (it != open.end()) {
          free_time[it->second] = e.t_ns;
          open.erase(it);
        }
      }
    }
  }
  // Forward/recompute ops, sorted by start, to find the op an allocation happened in.
  std::vector<const OpRecord*> fwd;
  for (const auto& op : ops) {
    if (op.phase == Phase::Forward || op.phase == Phase::Recompute) fwd.push_back(&op);
  }
  std::sort(fwd.begin(), fwd.end(), [](const OpRecord* a, const OpRecord* b) { return a->t0_ns < b->t0_ns; });
  std::unordered_map<const void*, std::vector<const RolePointers*>> role_of;
  for (const auto& r : roles) {
    for (const void* p : r.ptrs) role_of[p].push_back(&r);
  }
  auto classify = [&](size_t i) {
    const auto& e = events[i];
    auto it = role_of.find(e.ptr);
    if (it != role_of.end()) {
      for (const RolePointers* r : it->second) {
        if (e.t_ns <= r->t_ns && r->t_ns < free_time[i]) return r->category;
      }
    }
    // The forward op that was running when it was allocated, if any.
    auto op = std::upper_bound(fwd.begin(), fwd.end(), e.t_ns,
                               [](std::int64_t t, const OpRecord* o) { return t < o->t0_ns; });
    if (op != fwd.begin()) {
      const OpRecord* o = *(op - 1);
      if (e.t_ns <= o->t1_ns && free_time[i] > o->t1_ns) return MemoryCategory::Activation;
    }
    return MemoryCategory::Temporary;
  };
  // Pass 2: walk the events, moving bytes between categories.
  for (size_t i = 0; i < n; ++i) {
    const auto& e = events[i];
    if (e.host) {
      host_ += e.delta;
      emit(e.t_ns);
      continue;
    }
    if (e.delta > 0) {
      MemoryCategory c = classify(i);
      live_[e.ptr] = Live{e.delta, c};
      level_[static_cast<int>(c)] += e.delta;
    } else {
      auto it = live_.find(e.ptr);
      if (it != live_.end()) {
        level_[static_cast<int>(it->second.category)] -= it->second.size;
        live_.erase(it);
      } else {
        level_[static_cast<int>(MemoryCategory::Input)] += e.delta;  // allocated before recording
      }
    }
    emit(e.t_ns);
  }
}

MemoryTimeline TimelineBuilder::finish() const {
  MemoryTimeline out;
  const size_t n = t_.size();
  auto total = [&](size_t i) {
    std::uint64_t s = 0;
    for (auto v : levels_[i]) s += v;
    return s;
  };
  for (size_t i = 0; i < n; ++i) {
    bool keep = i == 0 || i + 1 == n;
    if (!keep) {
      const auto a = total(i - 1), b = total(i), c = total(i + 1);
      const bool rising_through = a <= b && b <= c;
      const bool falling_through = a >= b && b >= c;
      keep = !(rising_through || falling_through) || t_[i + 1] - t_[i - 1] > 1000 || hosts_[i] != hosts_[i - 1];
    }
    if (keep) out.push(t_[i], levels_[i], hosts_[i]);
  }
  return out;
}

}  // namespace tidemark::profiler
