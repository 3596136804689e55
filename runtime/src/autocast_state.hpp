#pragma once
// Autocast state captured in a forward and re-entered for a recompute in backward, so the
// recompute computes in the forward's precision (checkpoint segments, selective recompute).
#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace tidemark::runtime {

// LibTorch 2.4 replaced the per-device autocast switches (is_cpu_enabled, set_enabled, ...)
// with functions taking the device type and deprecated the old ones; these four pick the
// installed API so both 1.13 and 2.x build without deprecation noise.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
inline bool autocast_enabled(at::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
inline void set_autocast_enabled(at::DeviceType d, bool on) { at::autocast::set_autocast_enabled(d, on); }
inline at::ScalarType autocast_dtype(at::DeviceType d) { return at::autocast::get_autocast_dtype(d); }
inline void set_autocast_dtype(at::DeviceType d, at::ScalarType t) { at::autocast::set_autocast_dtype(d, t); }
#else
inline bool autocast_enabled(at::DeviceType d) {
  return d == at::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
inline void set_autocast_enabled(at::DeviceType d, bool on) {
  if (d == at::kCUDA) {
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_cpu_enabled(on);
  }
}
inline at::ScalarType autocast_dtype(at::DeviceType d) {
  return d == at::kCUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
inline void set_autocast_dtype(at::DeviceType d, at::ScalarType t) {
  if (d == at::kCUDA) {
    at::autocast::set_autocast_gpu_dtype(t);
  } else {
    at::autocast::set_autocast_cpu_dtype(t);
  }
}
#endif

struct AutocastState {
  bool cpu_enabled = false;
  at::ScalarType cpu_dtype = at::kBFloat16;
  bool gpu_enabled = false;
  at::ScalarType gpu_dtype = at::kHalf;

  static AutocastState current() {
    AutocastState s;
    s.cpu_enabled = autocast_enabled(at::kCPU);
    s.cpu_dtype = autocast_dtype(at::kCPU);
    s.gpu_enabled = autocast_enabled(at::kCUDA);
    s.gpu_dtype = autocast_dtype(at::kCUDA);
    return s;
  }
  void apply() const {
    set_autocast_enabled(at::kCPU, cpu_enabled);
    set_autocast_dtype(at::kCPU, cpu_dtype);
    set_autocast_enabled(at::kCUDA, gpu_enabled);
    set_autocast_dtype(at::kCUDA, gpu_dtype);
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
