#pragma once
// The model flags shared by profile and train (DESIGN.md, command line).
#include <CLI/CLI.hpp>

#include "tidemark/core/model_config.hpp"

namespace tidemark::cli {

void add_model_flags(CLI::App* cmd, ModelConfig& config);

}  // namespace tidemark::cli
