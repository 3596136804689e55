#pragma once
// Data-parallel training on PyTorch's c10d: rendezvous through a TCPStore, gradients
// all-reduced (ProcessGroupGloo on the CPU, ProcessGroupNCCL on CUDA, one GPU per rank:
// LOCAL_RANK) in buckets launched from autograd as backward produces them (so communication
// overlaps the rest of backward), averaged over the ranks.
//
// Note [data parallel]
// --batch is the global batch: rank r trains rows [r·B/N, (r+1)·B/N) of every step's batch,
// so N ranks see exactly what one process with batch B sees, and the loss (a mean over the
// batch) averaged over ranks is the one process's loss. Gradients are all-reduced (sum, then
// divided by N) per bucket; every rank applies the same averaged gradients, so parameters
// stay identical across ranks. Each rank's memory is its own: the model config a rank runs,
// profiles and plans with has batch B/N, the bucket buffers (one gradient's worth) are
// allocated once at start and counted like any tensor, and the plan's budget is per rank.
// A bucket is launched when all its gradients are ready and all buckets before it are
// launched, so every rank issues the collectives in the same order (Gloo and NCCL require it).
// Gradients reach the buckets from the parameters' AccumulateGrad nodes, so those of
// checkpointed segments (returned by the checkpoint Function's backward) arrive exactly as
// plain ones do.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <torch/torch.h>
#include <vector>

namespace tidemark::runtime {

// Parameter indices per bucket of about `bucket_bytes`, in backward's order (the last
// parameters first). DataParallel buckets with it; a profile of one rank allocates the same
// buffers (gradient_buckets) so the rank's memory is measured whole.
std::vector<std::vector<std::size_t>> bucket_assignment(const std::vector<torch::Tensor>& params,
                                                        std::int64_t bucket_bytes);
std::vector<torch::Tensor> gradient_buckets(const std::vector<torch::Tensor>& params, std::int64_t bucket_bytes);

// torchrun's environment: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT.
struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // How long a collective or the rendezvous may wait for a peer before failing.
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
};

// The environment's DistEnv, or nullopt when WORLD_SIZE is unset. Throws UserError naming
// the variable when one is missing or malformed. TIDEMARK_DIST_TIMEOUT_S overrides the
// timeout.
std::optional<DistEnv> dist_env_from_environment();

struct Comm;  // c10d_backends.hpp

class DataParallel {
 public:
  // Joins the job (blocks until every rank has, or the timeout) with Gloo for `device`
  // "cpu", NCCL for "cuda" (then GPU LOCAL_RANK becomes the current device: call before
  // anything is put on a GPU). Throws UserError.
  DataParallel(const DistEnv& env, const std::string& device);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const std::string& backend() const;  // "Gloo" or "NCCL"

  // Every rank must run the same thing: throws UserError on every rank when a rank's
  // `identity` differs from rank 0's, naming the rank and both values.
  void check_same_run(const std::string& what, const std::string& identity);

  // Buckets of about `bucket_bytes` over `params` (in reverse order: backward's order),
  // allocated now, filled and all-reduced from autograd hooks.
  void attach(const std::vector<torch::Tensor>& params, std::int64_t bucket_bytes);
  std::size_t bucket_count() const;
  std::int64_t bucket_bytes() const;

  // Call before backward and after it; finish_backward waits for the buckets still in
  // flight (on CUDA: makes the stream wait), averages, and writes the averaged gradients
  // back.
  void before_backward();
  void finish_backward();
  // The milliseconds the last step waited for communication after its backward (what
  // backward did not hide): on the CPU the host's wait, on CUDA the compute stream's
  // (timing events; waits for the step's work, so call it after reading the step's loss).
  double last_comm_wait_ms();

  // Mean over the ranks of one number (the step's loss).
  double average(double value);
  // Every rank's value, by rank.
  std::vector<std::int64_t> gather(std::int64_t value);

  // The process group and its timer, for ZeroSharding.
  Comm& comm();
  const DistEnv& env() const { return env_; }

  struct Impl;  // shared with the autograd hooks, which hold it weakly

 private:
  DistEnv env_;
  std::shared_ptr<Impl> shared_;
};

}  // namespace tidemark::runtime
