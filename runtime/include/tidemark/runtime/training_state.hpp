#pragma once
// Crash-safe training state: save a Trainer to a directory and resume it exactly.
//
// Note [training state]
// A state directory holds `state-<step>.pt` files and `LATEST`, one line naming the newest
// complete state with its size in bytes and its FNV-1a 64 digest. A save writes the state
// file, then LATEST, each under a temporary name that is flushed and renamed
// (write_file_atomic), and only then deletes states older than the previous one. So a crash
// at any instant leaves LATEST naming a complete state whose bytes it can verify: the new
// one, or the one before it, which is still there. Temporary files of an interrupted save
// are removed by the next save, never by a resume (a resume changes nothing in the
// directory).
//
// A state is a LibTorch archive with everything a run needs to continue as if it had not
// stopped: parameters and buffers, the AdamW state, the CPU (and CUDA) generator states
// that dropout draws from, the step (which is also the data position: batch k is a pure
// function of the seed and k), and what it was made for: model config and seed, the
// checkpointing plan, the corpus. Resuming refuses a state made for anything else.
#include <cstdint>
#include <string>

#include "tidemark/runtime/trainer.hpp"

namespace tidemark::runtime {

inline constexpr const char* kStateSchema = "tidemark.state";
inline constexpr std::int64_t kStateVersion = 1;

// What a state must match to be resumed: model config (with seed), checkpointing ("none",
// "uniform", or the plan's structure), corpus.
struct StateIdentity {
  std::string config;
  std::string checkpointing;
  std::string data;

  static StateIdentity of(const Trainer& trainer);
};

// Creates `dir` if missing (its parent must exist) and checks that it accepts files, so a
// long run does not fail at its first save. Throws UserError.
void prepare_state_dir(const std::string& dir);

// Saves the trainer's state after trainer.steps_done() steps into `dir` (created if
// missing; its parent must exist). Returns the state file's path. Throws UserError.
std::string save_training_state(const std::string& dir, Trainer& trainer);

// Loads the state LATEST names in `dir` into `trainer` (built with the same config) and
// returns its step; the trainer continues from there. Throws UserError, naming the file
// and what is wrong, for a missing, truncated, corrupt or foreign state; `dir` is left as
// it was.
int resume_training_state(const std::string& dir, Trainer& trainer);

}  // namespace tidemark::runtime
