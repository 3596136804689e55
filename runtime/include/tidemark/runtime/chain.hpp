#pragma once
// A model seen as a chain of stages 0..L-1 (DESIGN.md, execution model): stage k maps a_k to
// a_{k+1}. Plans, the executor and the profiler work on this interface, so a user's own
// model gets the same planner and executor by implementing it (or by wrapping a list of
// modules with SequentialChain).
#include <string>
#include <torch/torch.h>
#include <vector>

namespace tidemark::runtime {

// Per-step inputs a stage may need besides its activation (the head needs the targets).
// Captured by value into checkpoint closures, so a recompute sees the same batch.
struct StageContext {
  torch::Tensor targets;
};

class ChainModule {
 public:
  virtual ~ChainModule() = default;
  virtual int num_stages() const = 0;
  virtual std::string stage_name(int k) const = 0;
  virtual std::string stage_kind(int k) const = 0;
  // Variants run_stage accepts for stage k besides "" (the plain form).
  virtual std::vector<std::string> stage_variants(int /*k*/) const { return {}; }
  virtual torch::Tensor run_stage(int k, const torch::Tensor& input, const StageContext& ctx,
                                  const std::string& variant) = 0;
  virtual std::vector<torch::Tensor> stage_parameters(int k) = 0;
  // Digest of the model shape, compared with a plan's profile digest.
  virtual std::string digest() const = 0;
};

}  // namespace tidemark::runtime
