#pragma once
// The model flags shared by profile and train (DESIGN.md, command line).
#include <CLI/CLI.hpp>

#include "tidemark/core/model_config.hpp"

namespace tidemark::cli {

void add_model_flags(CLI::App* cmd, ModelConfig& config);

// --nproc N and --bucket-mb (train, profile).
void add_data_parallel_flags(CLI::App* cmd, int& nproc, double& bucket_mb);

// One rank's model config in a job of `world` ranks: --batch is the global batch (Note [data
// parallel]). Throws UserError when it does not divide.
ModelConfig per_rank_config(ModelConfig global, int world);

}  // namespace tidemark::cli
