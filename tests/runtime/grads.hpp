#pragma once
// Gradient comparison helpers for checkpointing tests.
#include <torch/torch.h>
#include <vector>

namespace tidemark::testing {

inline std::vector<torch::Tensor> grads_of(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) {
    out.push_back(p.grad().defined() ? p.grad().detach().clone() : torch::Tensor());
  }
  return out;
}

// Max over tensors of max|a - b| / max|a|: the relative difference the issues bound.
inline double max_relative_difference(const std::vector<torch::Tensor>& a,
                                      const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return INFINITY;  // so is a missing tensor
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].defined() || !b[i].defined()) return INFINITY;  // a missing gradient is a failure
    double scale = a[i].abs().max().item<double>();
    double diff = (a[i].to(torch::kFloat) - b[i].to(torch::kFloat)).abs().max().item<double>();
    worst = std::max(worst, scale > 0 ? diff / scale : diff);
  }
  return worst;
}

}  // namespace tidemark::testing
