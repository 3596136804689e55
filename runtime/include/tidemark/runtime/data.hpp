#pragma once
// Training data: byte-level text, from a file (--data) or a synthetic corpus generated
// in-process from the seed. Batches are a pure function of (seed, step), so a resumed run
// sees exactly the batches the original would have.
#include <cstdint>
#include <string>
#include <map>
#include <torch/torch.h>

#include "tidemark/runtime/chain.hpp"

namespace tidemark::runtime {

// One step's data: the first stage's inputs and what the stages read beside them.
struct Batch {
  Activations inputs;     // the GPT: token ids [B, T] int64
  torch::Tensor targets;  // the GPT: the inputs shifted by one
  std::map<std::string, torch::Tensor> tensors;  // per-step context tensors (masks)

  StageContext context() const { return StageContext{targets, tensors, {}}; }
};

class TextData {
 public:
  // A corpus of pseudo-English: a vocabulary of invented words linked by a sparse Markov
  // chain, in sentences. Learnable: the loss falls from ln(vocab) within tens of steps.
  static TextData synthetic(std::uint64_t seed, std::size_t bytes = 1u << 20);
  // Throws UserError when the file is missing, unreadable or shorter than a sequence.
  static TextData from_file(const std::string& path);

  // Throws UserError when the text uses a byte >= vocab, or is too short for seq.
  void check(std::int64_t vocab, std::int64_t seq) const;

  // Rows first_row .. first_row + batch of step `step`'s global batch: a data-parallel rank
  // takes its slice, and the ranks together see what one process with the whole batch sees.
  Batch batch(std::uint64_t seed, std::uint64_t step, std::int64_t batch, std::int64_t seq,
              const torch::Device& device, std::int64_t first_row = 0) const;

  const std::string& text() const { return text_; }
  const std::string& source() const { return source_; }

 private:
  std::string text_;
  std::string source_;
};

}  // namespace tidemark::runtime
