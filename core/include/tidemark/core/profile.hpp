#pragma once
// tidemark.profile/1: what the profiler measured and the planner solves on.
//
// Memory fields of a stage are defined by how the runtime executes it (DESIGN.md,
// "execution model"); every *_peak_bytes is the highest live-bytes level reached during
// that operation minus the live bytes just before it started, so it includes what the
// operation allocates and keeps. The planner's simulator composes these numbers.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tidemark/core/model_config.hpp"

namespace tidemark {

inline constexpr const char* kProfileSchema = "tidemark.profile";
inline constexpr int kProfileVersion = 1;

// Another way to run a stage in save mode, e.g. "attention-core": keep everything but the
// attention core, which backward recomputes. Same meaning as the stage's own fields.
struct StageVariant {
  std::string name;
  std::uint64_t saved_bytes = 0;
  std::uint64_t forward_peak_bytes = 0;
  std::uint64_t backward_peak_bytes = 0;
  std::uint64_t backward_held_peak_bytes = 0;  // see StageProfile
  double forward_ms = 0;
  double backward_ms = 0;  // includes the recompute this variant does in backward
};

struct StageProfile {
  std::string name;  // "embedding", "block.3", "head"
  std::string kind;  // "embedding", "block", "head"
  std::uint64_t input_bytes = 0;   // a_i
  std::uint64_t output_bytes = 0;  // a_{i+1}
  std::uint64_t saved_bytes = 0;   // kept for backward, besides input and output
  std::uint64_t param_bytes = 0;   // parameters (= their gradients' bytes)
  bool input_requires_grad = true; // false when the input is integer tokens
  std::uint64_t forward_peak_bytes = 0;         // forward with autograd recording
  std::uint64_t forward_nograd_peak_bytes = 0;  // forward without (inside a checkpoint)
  std::uint64_t backward_peak_bytes = 0;
  // The backward peak when the gradient of the stage's output stays referenced throughout
  // (the last stage of a checkpoint's recompute: the checkpoint holds it). Autograd cannot
  // then reuse that gradient's storage for the residual sum, so it can be higher. Optional
  // in the file (absent: equal to backward_peak_bytes).
  std::uint64_t backward_held_peak_bytes = 0;
  double forward_ms = 0;
  double forward_nograd_ms = 0;
  double backward_ms = 0;
  std::vector<StageVariant> variants;
};

struct StaticBytes {
  std::uint64_t parameters = 0;       // parameters and module buffers
  std::uint64_t gradients = 0;        // all parameter gradients (allocated during backward)
  std::uint64_t optimizer_state = 0;
  std::uint64_t inputs = 0;           // token ids and targets of one batch
  std::uint64_t other = 0;            // anything else live at the start of a step
  // Live bytes when a step starts: parameters + optimizer_state + inputs + other.
  std::uint64_t resident() const { return parameters + optimizer_state + inputs + other; }
};

// How the profiled rank holds its training state (profile --nproc N --zero K): data parallel
// over `ranks`, ZeRO stage `zero` (0: everything replicated). Note [ZeRO] in
// runtime/zero.hpp says what each stage keeps.
struct Sharding {
  int ranks = 0;  // 0: not recorded (files from before sharding); the writers always record it
  int zero = 0;
  // ZeRO-2/3: the largest stage's gradient buffer. One is still being reduced while the next
  // stage's backward runs, on top of what that stage's measured backward peak counts.
  std::uint64_t reduce_buffer_bytes = 0;

  bool operator==(const Sharding& o) const { return ranks == o.ranks && zero == o.zero; }
  bool known() const { return ranks > 0; }
  // "2 ranks, ZeRO-2", "1 rank" for messages.
  std::string describe() const;
};

// Copies between the device and pinned host memory, as the profiler measured them on a
// CUDA device with a stage-sized buffer on a side stream (JSON "host_link", optional:
// absent where there is no such link, as on the CPU, and then nothing is offloaded).
struct HostLink {
  double d2h_bytes_per_ms = 0;  // device to host
  double h2d_bytes_per_ms = 0;  // host to device

  bool measured() const { return d2h_bytes_per_ms > 0 && h2d_bytes_per_ms > 0; }
};

struct ChainProfile {
  // "gpt" for tidemark's own model (config then describes it and the stage count must be
  // config.layers + 2); another name for a user's chain profiled through the C++ API.
  std::string model = "gpt";
  ModelConfig config;
  std::string digest;  // config.digest() for "gpt"; the chain's own digest otherwise
  std::string torch_version;
  int warmup = 0;
  int iters = 0;
  // Where stage times come from: "wall" (CPU), "cupti" (GPU kernel time per stage), or
  // "wall-synchronized" (CUDA without CUPTI: the device is synchronized at stage bounds).
  std::string timing = "wall";
  StaticBytes static_bytes;
  Sharding sharding;  // JSON "sharding", optional (absent: one rank, nothing sharded)
  HostLink host_link;
  std::uint64_t peak_bytes = 0;            // measured no-checkpoint peak of a step
  double step_ms = 0;                      // measured no-checkpoint median step time
  std::uint64_t optimizer_peak_bytes = 0;  // above live bytes before zero_grad/step
  // What a checkpoint keeps besides its input from its forward to the end of its backward
  // (the random-generator states that make dropout replayable), and allocates once more
  // while it recomputes.
  std::uint64_t checkpoint_state_bytes = 0;
  double optimizer_ms = 0;
  std::vector<StageProfile> stages;  // JSON "layers"

  // Step time not spent in stage forward/backward (optimizer, data, loss.item()).
  double fixed_ms() const;
};

// Throws FormatError naming `source` and the field for anything malformed: another schema
// or version, missing fields, negative or NaN numbers, zero stages.
ChainProfile profile_from_json(const std::string& text, const std::string& source);
std::string profile_to_json(const ChainProfile& profile);
ChainProfile read_profile(const std::string& path);
void write_profile(const std::string& path, const ChainProfile& profile);

}  // namespace tidemark
