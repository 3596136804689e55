#include "model_flags.hpp"

namespace tidemark::cli {

void add_model_flags(CLI::App* cmd, ModelConfig& c) {
  const char* g = "Model (GPT)";
  cmd->add_option("--layers", c.layers, "transformer blocks")->capture_default_str()->group(g);
  cmd->add_option("--d-model", c.d_model, "model width")->capture_default_str()->group(g);
  cmd->add_option("--heads", c.heads, "attention heads; must divide --d-model")
      ->capture_default_str()
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
}

}  // namespace tidemark::cli
