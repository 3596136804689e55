#pragma once
// Records a tidemark.trace/1 while a Trainer runs steps: stage spans from the StageRecorder,
// the memory timeline from the allocator hook's events, classified into categories (Note
// [memory categories] in profiler/memory_timeline.hpp) with the storage pointers of the
// model's parameters, their gradients, the optimizer's state and the batch.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tidemark/core/trace.hpp"
#include "tidemark/profiler/memory_timeline.hpp"
#include "tidemark/profiler/stage_recorder.hpp"
#include "tidemark/runtime/data.hpp"
#include "tidemark/runtime/gpt.hpp"

namespace tidemark::runtime {

class TraceSession {
 public:
  // Turns on event recording in the ledger and seeds the timeline with what is live now.
  // `model_name` is "gpt" when `config` describes the chain.
  TraceSession(ChainModule& chain, std::vector<torch::Tensor> parameters,
               std::vector<torch::Tensor> buffers, torch::optim::Optimizer& optimizer,
               std::string mode, std::string model_name, const ModelConfig& config = {});
  ~TraceSession();

  void begin_step(int step, const Batch& batch);
  // The batch's tensors are inputs (a loop that makes its batch after the step began).
  void add_inputs(const Batch& batch);
  void after_backward();
  // `ops` are the stage records of this step (spans); `peak` the step's measured peak.
  void end_step(int step, std::int64_t peak, const std::vector<profiler::OpRecord>& ops);

  // The finished trace. Per-stage actions and budget/prediction are the caller's to add.
  Trace finish();

 private:
  std::vector<const void*> grad_pointers() const;
  std::vector<const void*> optimizer_pointers() const;

  ChainModule& chain_;
  std::vector<torch::Tensor> parameters_;
  torch::optim::Optimizer& optimizer_;
  std::string mode_;
  std::string model_name_;
  ModelConfig config_;
  std::int64_t origin_ns_;
  profiler::TimelineBuilder timeline_;
  std::vector<profiler::RolePointers> roles_;
  std::int64_t step_start_ns_ = 0;
  std::vector<Span> spans_;
  std::vector<StepMark> steps_;
  std::uint64_t peak_ = 0;
};

}  // namespace tidemark::runtime
