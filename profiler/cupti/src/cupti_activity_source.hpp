#pragma once
// ActivitySource over CUPTI's Activity API: enables CONCURRENT_KERNEL, MEMCPY, MEMSET and
// EXTERNAL_CORRELATION (plus RUNTIME and DRIVER, see the .cpp), tags scopes with
// CUSTOM0 external correlation ids, and parses the completed buffers on drain().
#include <cupti.h>

#include <memory>
#include <string>
#include <vector>

#include "tidemark/profiler/activity_source.hpp"
#include "tidemark/profiler/cupti_timer.hpp"

namespace tidemark::profiler::detail {

class CuptiActivitySource final : public ActivitySource {
 public:
  // Starts tracing; on failure undoes what it did, returns nullptr and sets `why_not`.
  static std::unique_ptr<CuptiActivitySource> start(const CuptiTimerOptions& options,
                                                    std::string& why_not);
  ~CuptiActivitySource() override;

  void push_external_id(std::uint64_t external_id) override;
  std::optional<std::uint64_t> pop_external_id() override;
  void drain(const RecordSink& sink) override;
  std::uint64_t take_dropped_records() override;

 private:
  CuptiActivitySource() = default;
  void disable_all() noexcept;

  bool owns_cupti_ = false;  // holds the process's one tracing slot; teardown is ours
  std::vector<CUpti_ActivityKind> enabled_;
};

}  // namespace tidemark::profiler::detail
