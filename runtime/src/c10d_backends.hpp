#pragma once
// The c10d backend a data-parallel job runs on: Gloo for CPU tensors, NCCL for CUDA ones.
// Built apart from the rest of the runtime (its own compile definitions, no precompiled
// header): NCCL's header needs USE_C10D_NCCL, and each backend is compiled only where its
// headers exist. Debian's LibTorch ships gloo's headers with libgloo-dev; PyTorch's wheels
// ship neither gloo's nor NCCL's in torch/include (NCCL's come with the nvidia-nccl wheel).
#include <c10/core/Device.h>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#include <torch/version.h>
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif

#include "tidemark/runtime/distributed.hpp"

namespace tidemark::runtime {

// What a backend derives from: ProcessGroup in LibTorch 1.x, Backend since 2.0.
#if TORCH_VERSION_MAJOR >= 2
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif

// How long the ranks' compute stream sat waiting for the gradient all-reduces after its
// backward: what communication cost the step beyond what backward hid.
class ExposedCommTimer {
 public:
  virtual ~ExposedCommTimer() = default;
  virtual void backward_done() = 0;  // every backward op is issued
  virtual void comm_done() = 0;      // every bucket's wait() returned
  // Milliseconds between the two, for the last step; call after the step's results are
  // read (on CUDA it waits for the second event).
  virtual double exposed_ms() = 0;
};

struct Comm {
  std::string name;  // "Gloo" or "NCCL"
  c10::intrusive_ptr<Collectives> pg;
  c10::Device device{c10::kCPU};  // where the collectives' tensors must live
  // NCCL's wait() makes the current CUDA stream wait and returns at once (a timeout would
  // make it block the CPU); Gloo's blocks the CPU, so it is given the job's timeout.
  bool stream_ordered = false;
  std::unique_ptr<ExposedCommTimer> timer;
  std::function<void()> shutdown;  // before the process group is released, where it needs one
};

// Before the rendezvous, so a rank that cannot run fails at once instead of after the
// timeout: with `cuda`, checks GPU LOCAL_RANK exists and makes it the current device.
// Throws UserError when this build has not got the backend, or the GPU does not exist.
void prepare_rank_device(const DistEnv& env, bool cuda);

// Gloo when `cuda` is false, NCCL (on GPU LOCAL_RANK) when true; after prepare_rank_device.
Comm make_comm(const c10::intrusive_ptr<c10d::Store>& store, const DistEnv& env, bool cuda);

// The backends this build has, for messages: "Gloo, NCCL", "Gloo", "none".
std::string comm_backends_built();

}  // namespace tidemark::runtime
