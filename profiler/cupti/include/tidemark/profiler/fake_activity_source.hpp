#pragma once
// An ActivitySource without CUDA, for tests: it behaves like CUPTI where that matters to
// attribution (a stack of external ids per thread; a launch records the innermost id;
// records come back in buffers) and lets the test choose timestamps, streams, arrival
// order and losses.
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tidemark/profiler/activity_source.hpp"

namespace tidemark::profiler {

class FakeActivitySource : public ActivitySource {
 public:
  // As CUPTI does for an API call made on the calling thread: assigns a fresh correlation
  // id and, if the thread has an external id pushed, emits the ExternalCorrelation record
  // for the innermost one into the current buffer. Returns the correlation id; emit the
  // GpuActivity for it (whenever the "GPU" finishes it) with emit_gpu().
  std::uint32_t launch();

  // Convenience: launch() and emit the GPU record right away. Returns the correlation id.
  std::uint32_t launch_kernel(std::uint64_t start_ns, std::uint64_t end_ns,
                              std::uint32_t stream_id = 7, std::string_view name = "kernel");

  // Emits a GPU record for an earlier launch into the current buffer.
  void emit_gpu(std::uint32_t correlation_id, std::uint64_t start_ns, std::uint64_t end_ns,
                std::uint32_t stream_id = 7, GpuActivityKind kind = GpuActivityKind::kernel,
                std::string_view name = "kernel");
  // Emits any record as is (out-of-order, missing or forged correlations).
  void emit(const ActivityRecord& record);
  // Closes the current buffer; later records go into a new one.
  void end_buffer();
  // Makes the next take_dropped_records() report `n` more lost records.
  void add_dropped(std::uint64_t n);

  // How many buffers drain() has delivered in total (empty ones are not delivered).
  std::size_t delivered_buffers() const;

  // ActivitySource
  void push_external_id(std::uint64_t external_id) override;
  std::optional<std::uint64_t> pop_external_id() override;
  void drain(const RecordSink& sink) override;
  std::uint64_t take_dropped_records() override;

 private:
  void emit_locked(ActivityRecord record);

  mutable std::mutex mutex_;
  std::unordered_map<std::thread::id, std::vector<std::uint64_t>> stacks_;
  std::vector<std::vector<ActivityRecord>> buffers_{1};  // the last one is open
  std::set<std::string, std::less<>> names_;             // owns the records' name views
  std::uint32_t next_correlation_id_ = 1;
  std::uint64_t dropped_ = 0;
  std::size_t delivered_buffers_ = 0;
};

}  // namespace tidemark::profiler
