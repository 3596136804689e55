#pragma once
// Hugging Face's gradient-checkpointing API, C++ shaped.
//
//   HF (Python)                                   tidemark (C++)
//   PreTrainedModel.supports_gradient_checkpointing   CheckpointableModel::supports_gradient_checkpointing()
//   model.gradient_checkpointing_enable(kwargs)       model->gradient_checkpointing_enable(CheckpointOptions)
//   model.gradient_checkpointing_disable()            model->gradient_checkpointing_disable()
//   layer.gradient_checkpointing (flag per layer)     GradientCheckpointingLayer::gradient_checkpointing
//   `if self.gradient_checkpointing and self.training`  GradientCheckpointingLayer::should_checkpoint(module)
//   TrainingArguments.gradient_checkpointing          TrainingConfig::gradient_checkpointing
#include <torch/torch.h>

#include "tidemark/runtime/checkpoint.hpp"

namespace tidemark::runtime {

// enable() on a model that does not declare support.
class NotSupported : public UserError {
 public:
  using UserError::UserError;
};

// Mixin for a layer whose forward may be checkpointed (HF's GradientCheckpointingLayer).
class GradientCheckpointingLayer {
 public:
  virtual ~GradientCheckpointingLayer() = default;
  bool gradient_checkpointing = false;
  CheckpointOptions checkpoint_options;

  // The per-layer guard: checkpointing enabled, module in training mode, and autograd
  // recording (in eval mode or under no_grad there is nothing to save, so no overhead).
  bool should_checkpoint(const torch::nn::Module& self) const {
    return gradient_checkpointing && self.is_training() && torch::GradMode::is_enabled();
  }
};

// Mixin for a model (HF's PreTrainedModel): enable/disable walk the model's modules and
// flip every GradientCheckpointingLayer.
class CheckpointableModel {
 public:
  virtual ~CheckpointableModel() = default;
  virtual bool supports_gradient_checkpointing() const = 0;

  // Throws NotSupported when the model does not declare support, UnsupportedOption when an
  // option cannot be honoured.
  void gradient_checkpointing_enable(const CheckpointOptions& options = {});
  void gradient_checkpointing_disable();
  bool is_gradient_checkpointing() const { return enabled_; }

 protected:
  virtual torch::nn::Module& checkpointable_module() = 0;
  virtual std::string model_name() const = 0;

 private:
  bool enabled_ = false;
};

}  // namespace tidemark::runtime
