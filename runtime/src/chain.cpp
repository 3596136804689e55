#include "tidemark/runtime/chain.hpp"

#include <fmt/format.h>

#include "tidemark/core/error.hpp"

namespace tidemark::runtime {

const torch::Tensor& StageContext::tensor(const std::string& name) const {
  auto it = tensors.find(name);
  if (it != tensors.end()) return it->second;
  std::string known;
  for (const auto& kv : tensors) known += (known.empty() ? "" : ", ") + kv.first;
  throw ChainError(fmt::format("the stage context has no tensor \"{}\" ({}); put it in the batch's "
                              "tensors (Batch::tensors[\"{}\"] = ...)",
                              name, known.empty() ? "it has none" : "it has: " + known, name));
}

void StageContext::check() const {
  for (const auto& kv : tensors) {
    if (kv.second.defined() && kv.second.requires_grad()) {
      throw ChainError(fmt::format(
          "context tensor \"{}\" requires grad, but context tensors get no gradient through a "
          "checkpoint; pass it between stages as an activation instead, or detach() it",
          kv.first));
    }
  }
  if (targets.defined() && targets.requires_grad()) {
    throw ChainError("the targets require grad, but they get no gradient through a checkpoint; detach() them");
  }
}

}  // namespace tidemark::runtime
