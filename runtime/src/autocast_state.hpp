#pragma once
// Autocast state captured in a forward and re-entered for a recompute in backward, so the
// recompute computes in the forward's precision (checkpoint segments, selective recompute).
#include <ATen/autocast_mode.h>

namespace tidemark::runtime {

struct AutocastState {
  bool cpu_enabled = false;
  at::ScalarType cpu_dtype = at::kBFloat16;
  bool gpu_enabled = false;
  at::ScalarType gpu_dtype = at::kHalf;

  static AutocastState current() {
    AutocastState s;
    s.cpu_enabled = at::autocast::is_cpu_enabled();
    s.cpu_dtype = at::autocast::get_autocast_cpu_dtype();
    s.gpu_enabled = at::autocast::is_enabled();
    s.gpu_dtype = at::autocast::get_autocast_gpu_dtype();
    return s;
  }
  void apply() const {
    at::autocast::set_cpu_enabled(cpu_enabled);
    at::autocast::set_autocast_cpu_dtype(cpu_dtype);
    at::autocast::set_enabled(gpu_enabled);
    at::autocast::set_autocast_gpu_dtype(gpu_dtype);
  }
};

// Re-enters the forward's autocast state for the recompute, like torch.autocast's
// __enter__/__exit__ (nesting count, cache cleared when the outermost region ends).
class AutocastRestore {
 public:
  explicit AutocastRestore(const AutocastState& forward_state) : saved_(AutocastState::current()) {
    forward_state.apply();
    at::autocast::increment_nesting();
  }
  ~AutocastRestore() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    saved_.apply();
  }

 private:
  AutocastState saved_;
};

}  // namespace tidemark::runtime
