#pragma once
// The model flags shared by profile and train (DESIGN.md, command line).
#include <CLI/CLI.hpp>

#include "tidemark/core/model_config.hpp"

namespace tidemark::cli {

void add_model_flags(CLI::App* cmd, ModelConfig& config);

// --nproc N, --bucket-mb and --zero K (train, profile).
void add_data_parallel_flags(CLI::App* cmd, int& nproc, double& bucket_mb, int& zero);

// --zero K needs a data-parallel job: --nproc 2 or more, or torchrun's environment (`in_job`;
// a one-rank torchrun job runs every collective with nothing to shard, which is how the NCCL
// path is tested on one GPU). Throws UserError saying how to get one.
void check_zero(int zero, int world, bool in_job);

// One rank's model config in a job of `world` ranks: --batch is the global batch (Note [data
// parallel]). Throws UserError when it does not divide.
ModelConfig per_rank_config(ModelConfig global, int world);

}  // namespace tidemark::cli
