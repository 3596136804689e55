#include "model_flags.hpp"

#include <fmt/format.h>

#include "tidemark/core/error.hpp"
#include "tidemark/runtime/gpt.hpp"

namespace tidemark::cli {

void add_model_flags(CLI::App* cmd, ModelConfig& c) {
  const char* g = "Model";
  cmd->add_option("--arch", c.arch,
                  "gpt (GPT-2: LayerNorm, learned positions, GELU MLP, biases) or llama (RMSNorm, rotary "
                  "q/k, grouped-query attention, SwiGLU MLP, no biases)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--layers", c.layers, "transformer blocks")->capture_default_str()->group(g);
  cmd->add_option("--d-model", c.d_model, "model width")->capture_default_str()->group(g);
  cmd->add_option("--heads", c.heads, "attention heads; must divide --d-model")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--kv-heads", c.kv_heads,
                  "llama: key/value heads (grouped-query attention); must divide --heads; default: --heads")
      ->group(g);
  cmd->add_option("--seq", c.seq, "sequence length")->capture_default_str()->group(g);
  cmd->add_option("--batch", c.batch, "sequences per step")->capture_default_str()->group(g);
  cmd->add_option("--vocab", c.vocab, "vocabulary size (256 for byte-level text)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--dropout", c.dropout, "dropout probability in [0, 1)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--seed", c.seed, "seed for weights, data and dropout")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--dtype", c.dtype, "float32, or bfloat16 (autocast)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--device", c.device, "cpu or cuda")->capture_default_str()->group(g);
  // Empty until parsed: then the best this build has for the model (runtime::best_attention).
  c.attention.clear();
  cmd->add_option("--attention", c.attention,
                  "naive (B*H*T^2 scores and probabilities kept for backward), chunked (query blocks: "
                  "nothing T^2 kept, rebuilt in backward) or sdpa (at::scaled_dot_product_attention, "
                  "LibTorch >= 2.1); default: the fastest the build has for the model: sdpa where LibTorch has "
                  "it and runs it fused (CUDA, or the CPU without dropout), else chunked from --seq 1024 on, "
                  "naive below")
      ->group(g);
  cmd->parse_complete_callback([&c] {
    if (c.attention.empty()) c.attention = runtime::best_attention(c);
  });
}

void add_data_parallel_flags(CLI::App* cmd, int& nproc, double& bucket_mb, int& zero) {
  const std::string g = "Data parallel";
  cmd->add_option("--nproc", nproc,
                  "data-parallel ranks to start on this machine (c10d: TCPStore; Gloo on the CPU, NCCL on "
                  "CUDA with one GPU per rank); --batch is then "
                  "the global batch and each rank trains batch/N of it. Under torchrun, leave it out: "
                  "RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT are read from the environment")
      ->capture_default_str()->check(CLI::Range(1, 1024))->group(g);
  cmd->add_option("--bucket-mb", bucket_mb, "gradient bucket size for the all-reduce, in MiB")
      ->capture_default_str()->check(CLI::PositiveNumber)->group(g);
  cmd->add_option("--zero", zero,
                  "shard the training state over the ranks (ZeRO): 1 the optimizer state, 2 also the "
                  "gradients, 3 also the parameters (gathered per stage as it runs); 0 replicates "
                  "everything (plain data parallel). Needs --nproc N or torchrun")
      ->capture_default_str()->check(CLI::Range(0, 3))->group(g);
}

void check_zero(int zero, int world, bool in_job) {
  if (zero > 0 && world < 2 && !in_job) {
    throw UserError(fmt::format("--zero {} shards the training state over data-parallel ranks, but this is a single "
                                "process; add --nproc 2 (or more), or run it under torchrun",
                                zero));
  }
}

ModelConfig per_rank_config(ModelConfig global, int world) {
  if (world <= 1) return global;
  if (global.batch % world != 0) {
    throw UserError(fmt::format("--batch {} is the global batch and must divide evenly among {} ranks; use a "
                                "multiple of {}",
                                global.batch, world, world));
  }
  global.batch /= world;
  return global;
}

}  // namespace tidemark::cli
