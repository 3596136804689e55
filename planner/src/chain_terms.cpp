#include "chain_terms.hpp"

#include <algorithm>

namespace tidemark::planner::detail {

ChainTerms::ChainTerms(const ChainCosts& chain) : chain_(chain), n_(chain.size()) {
  param_prefix_.assign(n_ + 1, 0);
  for (int k = 0; k < n_; ++k) param_prefix_[k + 1] = param_prefix_[k] + chain.stages[k].param;
  // Running sums over t, so a segment's time adds its stages in execution order.
  nograd_peak_.assign(static_cast<std::size_t>(n_) * (n_ + 1), 0);
  nograd_ms_.assign(nograd_peak_.size(), 0.0);
  for (int i = 0; i < n_; ++i) {
    std::uint64_t peak = 0;
    double ms = 0;
    for (int t = i; t < n_; ++t) {
      const StageCost& s = chain.stages[t];
      peak = std::max(peak, (t > i ? chain.in(t) : 0) + s.nograd_peak);
      ms += s.nograd_ms;
      nograd_peak_[at(i, t + 1)] = peak;
      nograd_ms_[at(i, t + 1)] = ms;
    }
  }
}

std::uint64_t ChainTerms::forward_phase(std::uint64_t peak, int j) const {
  // B counts the gradient of the loss, which exists only once backward starts: the forward
  // of a top-level list (j == n_) runs before that, so its peaks may use those bytes.
  if (j != n_) return peak;
  const std::uint64_t loss_grad = chain_.stages[n_ - 1].out;
  return peak > loss_grad ? peak - loss_grad : 0;
}

SaveTerms ChainTerms::save(int i, int v, int j) const {
  const StageCost& s = chain_.stages[i];
  const VariantCost& var = s.variants[v];
  SaveTerms t;
  t.forward = forward_phase(var.forward_peak, j);
  t.keep = s.out + var.saved;
  // At top level (j == n_) the loss stays live after the rest ran: the caller keeps it (its
  // gradient is in B, held by loss.backward() until backward returns).
  const std::uint64_t loss_kept = j == n_ ? chain_.stages[n_ - 1].out : 0;
  std::uint64_t left_by_rest = 0;
  if (i + 1 < j) {
    left_by_rest = params(i + 1, j) + chain_.grad_in(i + 1) + loss_kept;
  } else if (j == n_) {
    left_by_rest = s.out;  // stage i is the last: its output is the kept loss
  }
  // The last stage of a list runs its backward with the gradient of its output held.
  t.backward = var.saved + left_by_rest + var.backward_peak + (i + 1 == j ? var.held_extra : 0);
  t.ms = var.forward_ms + var.backward_ms;
  return t;
}

CheckpointTerms ChainTerms::checkpoint(int i, int k, int j) const {
  CheckpointTerms t;
  // r (checkpoint_state) is allocated before the no-grad forward and kept to the end of the
  // checkpoint's backward; during the inner list's forward one more r is live. The inner
  // list's row cannot tell its forward peak from its backward peak, so both r count
  // throughout: exact when r == 0, conservative by at most r otherwise.
  const std::uint64_t r = chain_.checkpoint_state;
  t.forward = forward_phase(r + nograd_peak_[at(i, k)], j);
  t.keep = chain_.stages[k - 1].out + r;
  const std::uint64_t loss_kept = j == n_ ? chain_.stages[n_ - 1].out : 0;
  t.inner_base = params(k, j) + chain_.grad_in(k) + loss_kept + 2 * r;
  t.ms = nograd_ms_[at(i, k)];
  return t;
}

SaveTerms ChainTerms::save_offloaded(int i, int v) const {
  const VariantCost& var = chain_.stages[i].variants[v];
  SaveTerms t = save(i, v, n_);
  t.keep -= var.saved;
  t.ms += std::max(0.0, chain_.d2h_ms(var.saved) - var.forward_ms) +
          std::max(0.0, chain_.h2d_ms(var.saved) - var.backward_ms);
  return t;
}

CheckpointTerms ChainTerms::checkpoint_offloaded(int i, int k) const {
  CheckpointTerms t = checkpoint(i, k, n_);
  const std::uint64_t x = chain_.in(i);
  t.released = x;
  t.ms += std::max(0.0, chain_.d2h_ms(x) - nograd_ms_[at(i, k)]) + chain_.h2d_ms(x);
  return t;
}

}  // namespace tidemark::planner::detail
