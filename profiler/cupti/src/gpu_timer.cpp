#include "tidemark/profiler/gpu_timer.hpp"

#include <exception>
#include <string>

#include "log_once.hpp"

namespace tidemark::profiler {

GpuTimer::GpuTimer(std::unique_ptr<ActivitySource> source) : source_(std::move(source)) {}

GpuTimer::~GpuTimer() = default;

void GpuTimer::begin_scope(std::uint64_t scope_id) noexcept {
  source_->push_external_id(scope_id);
  open_scopes_.fetch_add(1, std::memory_order_relaxed);
}

void GpuTimer::end_scope(std::uint64_t scope_id) noexcept {
  const std::optional<std::uint64_t> popped = source_->pop_external_id();
  if (popped) open_scopes_.fetch_sub(1, std::memory_order_relaxed);
  if (popped && *popped != scope_id) {
    detail::log_once("gpu_timer.end_scope.mismatch",
                     "GPU timer: end_scope(" + std::to_string(scope_id) +
                         ") but the innermost open scope on this thread is " +
                         std::to_string(*popped) +
                         "; scopes must nest per thread (later GPU times may be misattributed)");
  }
}

GpuStepTimes GpuTimer::collect() noexcept {
  if (open_scopes_.load(std::memory_order_relaxed) != 0) {
    detail::log_once("gpu_timer.collect.open",
                     "GPU timer: collect() while scopes are open; their later work goes to "
                     "the next step");
  }
  try {
    source_->drain([this](const ActivityRecord& r) { builder_.add(r); });
    return builder_.finish(source_->take_dropped_records());
  } catch (const std::exception& e) {
    detail::log_once("gpu_timer.collect.exception",
                     std::string("GPU timer: collect() failed, this step has no GPU times: ") +
                         e.what());
  } catch (...) {
    detail::log_once("gpu_timer.collect.exception",
                     "GPU timer: collect() failed, this step has no GPU times");
  }
  builder_ = ScopeTimeBuilder{};  // start the next step clean
  return {};
}

}  // namespace tidemark::profiler
