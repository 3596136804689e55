#include "tidemark/profiler/fake_activity_source.hpp"

#include <utility>

namespace tidemark::profiler {

std::uint32_t FakeActivitySource::launch() {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::uint32_t correlation_id = next_correlation_id_++;
  auto it = stacks_.find(std::this_thread::get_id());
  if (it != stacks_.end() && !it->second.empty())
    emit_locked(ExternalCorrelation{correlation_id, it->second.back()});
  return correlation_id;
}

std::uint32_t FakeActivitySource::launch_kernel(std::uint64_t start_ns, std::uint64_t end_ns,
                                                std::uint32_t stream_id, std::string_view name) {
  const std::uint32_t correlation_id = launch();
  emit_gpu(correlation_id, start_ns, end_ns, stream_id, GpuActivityKind::kernel, name);
  return correlation_id;
}

void FakeActivitySource::emit_gpu(std::uint32_t correlation_id, std::uint64_t start_ns,
                                  std::uint64_t end_ns, std::uint32_t stream_id,
                                  GpuActivityKind kind, std::string_view name) {
  GpuActivity a;
  a.kind = kind;
  a.start_ns = start_ns;
  a.end_ns = end_ns;
  a.correlation_id = correlation_id;
  a.stream_id = stream_id;
  a.name = name;
  emit(a);
}

void FakeActivitySource::emit(const ActivityRecord& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  emit_locked(record);
}

void FakeActivitySource::emit_locked(ActivityRecord record) {
  if (auto* gpu = std::get_if<GpuActivity>(&record))
    gpu->name = *names_.emplace(gpu->name).first;
  buffers_.back().push_back(std::move(record));
}

void FakeActivitySource::end_buffer() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!buffers_.back().empty()) buffers_.emplace_back();
}

void FakeActivitySource::add_dropped(std::uint64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  dropped_ += n;
}

std::size_t FakeActivitySource::delivered_buffers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return delivered_buffers_;
}

void FakeActivitySource::push_external_id(std::uint64_t external_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  stacks_[std::this_thread::get_id()].push_back(external_id);
}

std::optional<std::uint64_t> FakeActivitySource::pop_external_id() {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = stacks_.find(std::this_thread::get_id());
  if (it == stacks_.end() || it->second.empty()) return std::nullopt;
  const std::uint64_t id = it->second.back();
  it->second.pop_back();
  return id;
}

void FakeActivitySource::drain(const RecordSink& sink) {
  // Like cuptiActivityFlushAll with the forced flag: the open buffer is delivered too.
  std::vector<std::vector<ActivityRecord>> ready;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ready.swap(buffers_);
    buffers_.emplace_back();
  }
  for (const auto& buffer : ready) {
    if (buffer.empty()) continue;
    for (const auto& record : buffer) sink(record);
    std::lock_guard<std::mutex> lock(mutex_);
    ++delivered_buffers_;
  }
}

std::uint64_t FakeActivitySource::take_dropped_records() {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::exchange(dropped_, 0);
}

}  // namespace tidemark::profiler
