#include "c10d_backends.hpp"

#include <cstdlib>
#include <fmt/format.h>
#include <type_traits>
#include <utility>

#include "tidemark/core/error.hpp"

#ifdef TIDEMARK_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef TIDEMARK_HAVE_NCCL
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace tidemark::runtime {
namespace {

// Gloo blocks the CPU in wait(), so the host clock sees the exposed time directly.
class HostTimer : public ExposedCommTimer {
 public:
  void backward_done() override { start_ = std::chrono::steady_clock::now(); }
  void comm_done() override {
    ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  }
  double exposed_ms() override { return ms_; }

 private:
  std::chrono::steady_clock::time_point start_;
  double ms_ = 0;
};

#ifdef TIDEMARK_HAVE_GLOO
Comm make_gloo(const c10::intrusive_ptr<c10d::Store>& store, const DistEnv& env) {
  auto opts = c10d::ProcessGroupGloo::Options::create(env.timeout);
  // As PyTorch does: GLOO_SOCKET_IFNAME picks the interface; a job on one machine uses
  // the loopback; otherwise the address this machine's hostname resolves to.
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  } else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  Comm c;
  c.name = "Gloo";
  c.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, opts);
  c.timer = std::make_unique<HostTimer>();
  return c;
}
#endif

#ifdef TIDEMARK_HAVE_NCCL
// NCCL's wait() only orders streams, so the CPU clock sees nothing: two timing events on
// the compute stream, one when backward's last op is issued and one after the stream is
// made to wait for the all-reduces, measure how long the GPU sat waiting for them.
class CudaTimer : public ExposedCommTimer {
 public:
  void backward_done() override { start_.record(); }
  void comm_done() override {
    end_.record();
    recorded_ = true;
  }
  double exposed_ms() override {
    if (!recorded_) return 0;
    end_.synchronize();
    return start_.elapsed_time(end_);
  }

 private:
  at::cuda::CUDAEvent start_{cudaEventDefault}, end_{cudaEventDefault};
  bool recorded_ = false;
};

// ProcessGroupNCCL::shutdown() (PyTorch 2.2 and later) releases the communicators in order;
// without it LibTorch 2.x warns at exit that the group was not destroyed.
template <typename T, typename = void>
struct HasShutdown : std::false_type {};
template <typename T>
struct HasShutdown<T, std::void_t<decltype(std::declval<T&>().shutdown())>> : std::true_type {};
template <typename PG>
std::function<void()> shutdown_of(PG* pg) {
  if constexpr (HasShutdown<PG>::value) {
    return [pg] { pg->shutdown(); };
  } else {
    return {};
  }
}

Comm make_nccl(const c10::intrusive_ptr<c10d::Store>& store, const DistEnv& env) {
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = env.timeout;
  Comm c;
  c.name = "NCCL";
  auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, opts);
  c.shutdown = shutdown_of(pg.get());
  c.pg = pg;
  c.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  c.stream_ordered = true;
  c.timer = std::make_unique<CudaTimer>();
  return c;
}
#endif

}  // namespace

std::string comm_backends_built() {
  std::string out;
#ifdef TIDEMARK_HAVE_GLOO
  out += "Gloo";
#endif
#ifdef TIDEMARK_HAVE_NCCL
  out += out.empty() ? "NCCL" : ", NCCL";
#endif
  return out.empty() ? "none" : out;
}

void prepare_rank_device(const DistEnv& env, bool cuda) {
  if (!cuda) {
#ifndef TIDEMARK_HAVE_GLOO
    throw UserError(fmt::format("data parallel on the CPU needs ProcessGroupGloo, and this tidemark was built "
                                "without it (c10d backends built: {}): this LibTorch ships no gloo headers; install "
                                "them (Debian: libgloo-dev) and rebuild",
                                comm_backends_built()));
#endif
    return;
  }
#ifdef TIDEMARK_HAVE_NCCL
  const int gpus = static_cast<int>(c10::cuda::device_count());
  if (env.local_rank >= gpus) {
    throw UserError(fmt::format("rank {} has LOCAL_RANK {}, but this machine has {} CUDA GPU{}; NCCL runs one rank "
                                "per GPU: start at most {} rank{} on this machine",
                                env.rank, env.local_rank, gpus, gpus == 1 ? "" : "s", gpus, gpus == 1 ? "" : "s"));
  }
  // Tensors made for "cuda" go to the current device: this rank's GPU.
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(env.local_rank));
#else
  throw UserError(fmt::format("data parallel on CUDA needs ProcessGroupNCCL, and this tidemark was built without "
                              "it (c10d backends built: {}); rebuild against a CUDA LibTorch with NCCL's headers "
                              "found (cmake -DNCCL_INCLUDE_DIR=...), or train with --device cpu",
                              comm_backends_built()));
#endif
}

Comm make_comm(const c10::intrusive_ptr<c10d::Store>& store, const DistEnv& env, bool cuda) {
#ifdef TIDEMARK_HAVE_NCCL
  if (cuda) return make_nccl(store, env);
#endif
#ifdef TIDEMARK_HAVE_GLOO
  if (!cuda) return make_gloo(store, env);
#endif
  (void)store;
  throw std::logic_error("make_comm before prepare_rank_device, or for a backend this build has not got");
}

}  // namespace tidemark::runtime
