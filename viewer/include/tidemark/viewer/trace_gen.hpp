#pragma once
// Synthetic tidemark.trace/1 traces shaped like a GPT training step, for tests, the
// benchmark and screenshots before real traces exist (and for sizes no real run reaches).
//
// Each step: input allocated; forward spans for stages 0..L-1 (activation rises, temporaries
// spike inside each span); backward spans L-1..0 (activation falls, gradients appear); with
// checkpointing, each checkpointed segment is recomputed (recompute spans, activation rises
// again) just before its backward; then the optimizer (its state appears in the first step)
// and the gradients are released. Budget and predicted peak come with checkpointing.
#include <cstddef>
#include <cstdint>

#include "tidemark/core/trace.hpp"

namespace tidemark::viewer {

struct TraceGenOptions {
  int blocks = 8;              // transformer blocks; stages are embedding, blocks, head
  int steps = 3;
  bool checkpoint = true;      // a plan ran: checkpointed segments, recompute spans, budget
  int segment = 2;             // blocks per checkpointed segment
  int samples_per_span = 12;   // memory samples inside each span (>= 2)
  std::uint64_t seed = 1;
  // Sizes of one block; the rest scales from these.
  std::uint64_t block_param_bytes = 12ull << 20;
  std::uint64_t block_saved_bytes = 40ull << 20;
  std::uint64_t activation_bytes = 4ull << 20;  // a_i, the boundary activation
  std::uint64_t input_bytes = 1ull << 20;       // the batch (token ids are small)
  double block_forward_us = 2000;
};

// Options for a trace of about `samples` memory samples and `spans` spans.
TraceGenOptions trace_gen_options_for(std::size_t samples, std::size_t spans, bool checkpoint);

Trace generate_trace(const TraceGenOptions& options);

}  // namespace tidemark::viewer
