#include "tidemark/runtime/gradient_checkpointing.hpp"

#include <fmt/format.h>

namespace tidemark::runtime {

void CheckpointableModel::gradient_checkpointing_enable(const CheckpointOptions& options) {
  if (!supports_gradient_checkpointing()) {
    throw NotSupported(fmt::format(
        "{} does not support gradient checkpointing (supports_gradient_checkpointing() is false); "
        "its layers must derive from GradientCheckpointingLayer and guard their forward with "
        "should_checkpoint(), or wrap the layers yourself with tidemark::runtime::checkpoint",
        model_name()));
  }
  options.validate();
  int layers = 0;
  for (const auto& m : checkpointable_module().modules(/*include_self=*/true)) {
    if (auto* layer = dynamic_cast<GradientCheckpointingLayer*>(m.get())) {
      layer->gradient_checkpointing = true;
      layer->checkpoint_options = options;
      ++layers;
    }
  }
  if (layers == 0) {
    throw NotSupported(fmt::format(
        "{} declares gradient checkpointing support but has no GradientCheckpointingLayer "
        "submodules to checkpoint",
        model_name()));
  }
  enabled_ = true;
}

void CheckpointableModel::gradient_checkpointing_disable() {
  for (const auto& m : checkpointable_module().modules(/*include_self=*/true)) {
    if (auto* layer = dynamic_cast<GradientCheckpointingLayer*>(m.get())) {
      layer->gradient_checkpointing = false;
    }
  }
  enabled_ = false;
}

}  // namespace tidemark::runtime
