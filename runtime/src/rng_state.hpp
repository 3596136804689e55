#pragma once
// The default generators' states: what a checkpoint replays for its recompute and what a
// saved training state carries (dropout masks draw from them).
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <mutex>

namespace tidemark::runtime {

struct RngSnapshot {
  bool valid = false;
  at::Tensor cpu;
  at::Tensor cuda;  // for work on a CUDA device; undefined otherwise
  c10::Device cuda_device{c10::kCPU};
};

// The CPU generator's state, and the CUDA one's of `device` when it is a GPU.
inline RngSnapshot take_rng(const c10::Device& device) {
  RngSnapshot s;
  s.valid = true;
  {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    s.cpu = gen.get_state();
  }
  if (device.is_cuda()) {
    s.cuda_device = device;
    at::Generator gen = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    s.cuda = gen.get_state();
  }
  return s;
}

inline void restore_rng(const RngSnapshot& s) {
  {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(s.cpu);
  }
  if (s.cuda.defined()) {
    at::Generator gen = at::globalContext().defaultGenerator(s.cuda_device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(s.cuda);
  }
}

}  // namespace tidemark::runtime
