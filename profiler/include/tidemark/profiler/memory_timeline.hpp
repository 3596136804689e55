#pragma once
// Memory categories from allocator events, as torch.profiler's MemoryProfile does in Python:
// parameter, gradient, optimizer_state, input, activation, temporary.
//
// Note [memory categories]
// An allocation (from its allocation event to its free) is
//  - parameter / gradient / optimizer_state / input when its pointer is one of the storage
//    pointers the caller reported for those roles (module parameters and buffers, their
//    .grad after backward, the optimizer's state tensors, the batch) at a moment when the
//    allocation was live;
//  - activation when it was allocated inside a stage's forward (or recompute) and outlives
//    that operation: autograd kept it for backward, or it is the stage's output;
//  - temporary otherwise: workspace freed within the operation that made it, gradients of
//    activations in backward, optimizer scratch.
// Torch-free: fed with raw events and pointers, so it is unit-tested on synthetic input.
#include <array>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "tidemark/core/trace.hpp"
#include "tidemark/profiler/memory_ledger.hpp"
#include "tidemark/profiler/stage_recorder.hpp"

namespace tidemark::profiler {

// Storage pointers with a role, each observed at time t_ns.
struct RolePointers {
  MemoryCategory category = MemoryCategory::Parameter;
  std::int64_t t_ns = 0;
  std::vector<const void*> ptrs;
};

class TimelineBuilder {
 public:
  explicit TimelineBuilder(std::int64_t origin_ns) : origin_ns_(origin_ns) {}

  // Allocations that exist before recording starts, and the live total then; bytes not
  // covered by `known` are counted as input (batch and other resident data).
  void seed(std::int64_t live_total,
            const std::vector<std::pair<const void*, std::pair<std::int64_t, MemoryCategory>>>& known);

  // One step: its events (in order), the stage ops recorded meanwhile, and role pointers.
  void add_step(const std::vector<MemoryEvent>& events, const std::vector<OpRecord>& ops,
                const std::vector<RolePointers>& roles);

  // The timeline, reduced: samples strictly inside a run where the total only rises or only
  // falls are dropped, since they can hold neither a peak nor a trough.
  MemoryTimeline finish() const;
  // Number of samples before reduction.
  size_t raw_samples() const { return t_.size(); }

 private:
  struct Live {
    std::int64_t size;
    MemoryCategory category;
  };
  void emit(std::int64_t t_ns);

  std::int64_t origin_ns_;
  std::array<std::int64_t, kCategoryCount> level_{};
  std::unordered_map<const void*, Live> live_;
  std::vector<std::int64_t> t_;
  std::vector<std::array<std::uint64_t, kCategoryCount>> levels_;
  std::int64_t host_ = 0;  // offload's pinned host bytes (events with `host`)
  std::vector<std::uint64_t> hosts_;
};

}  // namespace tidemark::profiler
