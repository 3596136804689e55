#include "tidemark/profiler/memory_ledger.hpp"

#include <algorithm>
#include <chrono>

namespace tidemark::profiler {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void MemoryLedger::on_event(const void* ptr, std::int64_t delta) {
  std::lock_guard<std::mutex> lock(mu_);
  live_ += delta;
  if (delta > 0) {
    ++allocations_;
    step_peak_ = std::max(step_peak_, live_);
    op_peak_ = std::max(op_peak_, live_);
  }
  if (recording_) events_.push_back(MemoryEvent{now_ns(), ptr, delta});
}

void MemoryLedger::on_host_event(std::int64_t delta) {
  std::lock_guard<std::mutex> lock(mu_);
  if (recording_) events_.push_back(MemoryEvent{now_ns(), nullptr, delta, true});
}

std::int64_t MemoryLedger::live() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_;
}

std::int64_t MemoryLedger::step_peak() const {
  std::lock_guard<std::mutex> lock(mu_);
  return step_peak_;
}

std::int64_t MemoryLedger::op_peak() const {
  std::lock_guard<std::mutex> lock(mu_);
  return op_peak_;
}

void MemoryLedger::reset_step_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  step_peak_ = live_;
}

void MemoryLedger::reset_op_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  op_peak_ = live_;
}

void MemoryLedger::snapshot(std::int64_t& live, std::int64_t& op_peak) const {
  std::lock_guard<std::mutex> lock(mu_);
  live = live_;
  op_peak = op_peak_;
}

void MemoryLedger::set_recording(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  recording_ = on;
}

bool MemoryLedger::recording() const {
  std::lock_guard<std::mutex> lock(mu_);
  return recording_;
}

std::vector<MemoryEvent> MemoryLedger::take_events() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<MemoryEvent> out;
  out.swap(events_);
  return out;
}

std::uint64_t MemoryLedger::allocations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return allocations_;
}

}  // namespace tidemark::profiler
