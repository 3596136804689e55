#pragma once
// A model seen as a chain of stages 0..L-1 (DESIGN.md, execution model): stage k maps a_k to
// a_{k+1}. Plans, the executor and the profiler work on this interface, so a user's own
// model gets the same planner and executor by implementing it (or, simpler, by building a
// tidemark::Chain from its modules: tidemark/tidemark.hpp).
//
// Note [stage signature]
// What passes from stage to stage is a list of tensors (Activations), not one: a block may
// take the hidden state and a mask, or return a hidden state and a cache. Every tensor in it
// is held, checkpointed and counted like the single activation of the paper's model. What
// does not change from stage to stage (targets, masks, position ids, rotary tables, anything
// that is not a tensor) travels in the StageContext, which every stage of a step sees
// unchanged and which a checkpoint copies into its recompute. A context tensor must not
// require grad: it would get no gradient through a checkpoint, so the executor refuses it.
#include <any>
#include <map>
#include <string>
#include <torch/torch.h>
#include <vector>

#include "tidemark/core/error.hpp"

namespace tidemark::runtime {

// A chain that cannot run as built: a stage handed another number of tensors than it
// takes, a context tensor missing or requiring grad, two stages with one name.
class ChainError : public UserError {
 public:
  using UserError::UserError;
};

// a_k: the tensors one stage hands to the next.
using Activations = std::vector<torch::Tensor>;

// What every stage of one step may read besides its activations.
struct StageContext {
  torch::Tensor targets;                          // what the loss stage compares with
  std::map<std::string, torch::Tensor> tensors;  // masks, position ids, rotary tables
  std::any value;                                // anything else of the caller's

  // tensors.at(name), or a ChainError naming the names there are.
  const torch::Tensor& tensor(const std::string& name) const;
  // Throws ChainError when a context tensor requires grad (Note [stage signature]).
  void check() const;
};

class ChainModule {
 public:
  virtual ~ChainModule() = default;
  virtual int num_stages() const = 0;
  virtual std::string stage_name(int k) const = 0;
  // "block" for the repeated blocks that uniform checkpointing wraps one by one; any other
  // word ("embedding", "head", "loss") for the rest.
  virtual std::string stage_kind(int k) const = 0;
  // Variants run_stage accepts for stage k besides "" (the plain form).
  virtual std::vector<std::string> stage_variants(int /*k*/) const { return {}; }
  virtual Activations run_stage(int k, const Activations& inputs, const StageContext& ctx,
                                const std::string& variant) = 0;
  virtual std::vector<torch::Tensor> stage_parameters(int k) = 0;
  // Digest of the model shape, compared with a plan's profile digest.
  virtual std::string digest() const = 0;
};

}  // namespace tidemark::runtime
