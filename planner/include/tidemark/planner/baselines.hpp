#pragma once
// The schedules people use today, built as plan trees so the one simulator judges them all.
// Only stages of kind "block" are checkpointed (ChainCosts::block_stages); the others are saved.
//   none      [save 0..L)
//   uniform   Hugging Face gradient checkpointing: each block its own checkpoint, inner [save]
//   uniform-offload  Hugging Face's gradient_checkpointing_kwargs={"offload": True}: uniform,
//             each checkpoint's input in pinned host memory (Note [offload]; CUDA only)
//   every-k   consecutive blocks grouped k at a time, each group a checkpoint, inner [save]
//   sqrt      Chen et al. 2016: every-k with k = ceil(sqrt(number of blocks))
//   revolve   Griewank and Walther's binomial schedule with s snapshots, the blocks taken as
//             a homogeneous chain: rev(l, s) = [checkpoint of the first k blocks, inner
//             rev(k, s)] then rev(l - k, s - 1); rev(1, s) = [save]; k minimises the
//             homogeneous recompute count cost(l, s) = min_k k + cost(k, s) + cost(l-k, s-1)
#include <vector>

#include "tidemark/core/plan.hpp"
#include "tidemark/planner/candidate.hpp"
#include "tidemark/planner/chain.hpp"

namespace tidemark::planner {

PlanNode none_plan(const ChainCosts& chain);
PlanNode uniform_plan(const ChainCosts& chain);
PlanNode uniform_offload_plan(const ChainCosts& chain);
// `root` with every top-level checkpoint's input in host memory (a checkpoint of stage 0
// excepted: its input is the batch). uniform_offload_plan is uniform_plan through this.
PlanNode with_checkpoint_inputs_offloaded(PlanNode root);
PlanNode every_k_plan(const ChainCosts& chain, int k);  // k >= 1
PlanNode sqrt_plan(const ChainCosts& chain);
PlanNode revolve_plan(const ChainCosts& chain, int snapshots);  // snapshots >= 1

int block_count(const ChainCosts& chain);
int sqrt_group_size(const ChainCosts& chain);  // ceil(sqrt(block_count))

// Every plan the parametrised baselines can make, simulated: every-k for k = 1 .. blocks,
// revolve for every snapshot count that changes the schedule.
std::vector<Candidate> every_k_candidates(const ChainCosts& chain);
std::vector<Candidate> revolve_candidates(const ChainCosts& chain);

}  // namespace tidemark::planner
