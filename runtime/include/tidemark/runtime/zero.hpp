#pragma once
// ZeRO on c10d: the training state of a data-parallel job sharded over its ranks
// (train --nproc N --zero 1|2|3), so what each rank holds falls with N.
//
// Note [ZeRO]
// The unit of sharding is a stage of the chain. Stage k's parameters are laid out, in order,
// in one flat buffer padded to a multiple of N elements; rank r owns elements [r·c, (r+1)·c)
// with c = padded/N. Every rank so owns 1/N of every stage (balanced by bytes to N-1
// elements a stage), and one collective per stage reduces or gathers it whole. AdamW's state
// exists only for the owned shards, and AdamW steps them (it is elementwise, so stepping
// shards is stepping the model); clipping takes the global norm from every rank's shards.
//  ZeRO-1  parameters whole on every rank (views into their stage's buffer). A parameter's
//          gradient is copied into its stage's gradient buffer (whole, kept across steps) as
//          soon as autograd completes it, and freed; a stage is all-reduced once all of its
//          gradients are in, while backward goes on. After the step, the ranks' updated
//          shards are gathered into every rank's parameters.
//  ZeRO-2  gradients sharded too: a stage's gradient buffer exists from its first gradient
//          until its reduction is done; the rank keeps its shard of the result (1/N) and the
//          buffer is freed when the next stage's reduction is launched, so one reduction is
//          in flight while the next stage's backward runs.
//  ZeRO-3  parameters sharded too: a rank keeps only its shards. A stage's full parameters
//          are gathered before its forward and freed after it; gathered again when its
//          backward begins (an identity node on its outputs) and freed when the next stage's
//          backward begins or its last gradient is in. A checkpointed stage is gathered for
//          its recompute as well: a third gather, which the profile's times include.
// Communication: on Gloo a stage is reduced and gathered by an all-reduce of its buffer in
// place (zeros where this rank has nothing), because Gloo's reduce-scatter and all-gather
// copy into flat buffers of their own, memory no plan could see; an all-reduce moves twice
// the bytes of a reduce-scatter or all-gather. NCCL reduce-scatters and all-gathers into the
// buffer directly.
//
// Memory per rank for P bytes of fp32 parameters (AdamW keeps 2P), besides activations:
//   plain data parallel  P + P gradients + P buckets + 2P             = 5P
//   ZeRO-1               P + P stage buffers + 2P/N
//   ZeRO-2               P + P/N gradient shards + 2P/N + one stage buffer in flight
//   ZeRO-3               P/N + P/N + 2P/N + one stage's gathered parameters and buffer
#include <cstdint>
#include <memory>
#include <string>
#include <torch/torch.h>
#include <vector>

#include "tidemark/runtime/chain.hpp"

namespace tidemark::runtime {

class DataParallel;

class ZeroSharding {
 public:
  // Shards `chain`'s stage parameters over `dp`'s ranks at ZeRO `stage` (1 to 3). Every rank
  // must hold the same parameters (the same seed) when it is made. Call before the optimizer
  // is made (it steps shards()) and before the first step; with stage 3 the full parameters
  // are freed here and this rank keeps its shards. Throws UserError (a stage out of range, a
  // parameter in two stages). While it lives it is the process's parameter gather (ZeRO-3).
  ZeroSharding(DataParallel& dp, ChainModule& chain, int stage);
  ~ZeroSharding();
  ZeroSharding(const ZeroSharding&) = delete;
  ZeroSharding& operator=(const ZeroSharding&) = delete;

  int stage() const;
  int rank() const;
  int world_size() const;

  // What the optimizer steps: this rank's shard of every stage that has parameters, flat.
  const std::vector<torch::Tensor>& shards() const;

  // After loss.backward(): waits for the reductions still in flight, averages over the
  // ranks, and sets every shard's .grad. Throws RunFailure when a collective fails or a
  // parameter got no gradient.
  void finish_backward();
  // The milliseconds this rank sat blocked in collectives from the previous finish_backward
  // to the end of this one: the last step's parameter gathers after its optimizer step, this
  // step's gathers, the reductions a launch waited for, and the final wait. Unlike plain data
  // parallel's figure (the wait after backward only), it counts waits inside backward too.
  double last_comm_wait_ms() const;

  // Scales the shards' gradients so that the model's global L2 norm is at most max_norm, as
  // torch::nn::utils::clip_grad_norm_ on the whole model; returns the norm before.
  double clip_grad_norm(double max_norm);
  // After the optimizer step: ZeRO-1/2 gather the updated shards into every rank's
  // parameters; ZeRO-3 has nothing to do (the next forward gathers).
  void after_step();

  // ZeRO-3: make stage k's full parameters present now (for saving, tests) / free them.
  void gather(int k);
  void release(int k);

  // What a saved state must match to be resumed here: "ZeRO-2, rank 1 of 2".
  std::string layout() const;
  // Puts saved shards (shards() of the same layout) in place, and at ZeRO-1/2 gathers them
  // into the parameters. Collective: every rank calls it. Throws UserError on a shape that
  // does not fit.
  void load_shards(const std::vector<torch::Tensor>& saved);

  // The largest stage gradient buffer: what is in flight beyond a stage's own backward
  // (ZeRO-2/3; 0 for ZeRO-1, whose buffers are static).
  std::uint64_t reduce_buffer_bytes() const;
  // Describes the layout for logs: "ZeRO-2 over 2 ranks: 10 stages, shard 1.2 MiB of 2.4 MiB".
  std::string describe() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tidemark::runtime
