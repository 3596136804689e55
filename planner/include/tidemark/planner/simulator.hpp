#pragma once
// Peak live bytes and step time of any plan tree, executed exactly as the runtime does.
// Every solver's `predicted` block comes from here, never from the solver's own arithmetic.
//
// Note [execution model]
// A list of nodes over [i, j) runs its forward in order, then (after everything later in
// the chain has run forward and backward) its backward in reverse order.
//  - save k: forward records autograd state: peak L + f, then L += y + s. Backward: peak
//    L + b (+ the held extra when the gradient of a_{k+1} is held), then L += (gradient of
//    a_k if input_grad) + p - s - (gradient of a_{k+1}, unless held) - (a_k, unless held).
//  - checkpoint [c, d): first its state r (RNG states) is allocated and kept; then forward
//    without recording, stage by stage: peak L + fn, L += y, and a_t (c < t) is freed once
//    stage t ran; a_c is held by the checkpoint. Backward: the current RNG state (r more)
//    is kept aside during the recompute's forward, then freed. The
//    incoming gradient of a_d stays referenced for the whole segment (it is the argument of
//    the checkpoint's backward); the inner list runs forward with recording, its output is
//    dropped (only its graph is needed), then its backward runs with a_c and the gradient
//    of a_d held; finally the checkpoint releases both (unless an enclosing checkpoint
//    holds the same tensors) and its state r.
//  - offload (top-level nodes only; Note [offload]).
//  - top level: the gradient of the final output is created when backward starts and held
//    until it returns (loss.backward() keeps it), the final output (the loss) is kept by the
//    caller, and after backward the optimizer step peaks at L + optimizer_peak.
//
// Note [offload]
// Copies run on their own stream, one stream per direction; the step waits for them only
// where the runtime does, so their time counts only where it is not hidden.
//  - save k offloaded: each saved tensor is copied to pinned host memory as the forward
//    saves it, overlapping the rest of the stage's forward; at the end of the forward the
//    step waits for the copies and the device bytes s are freed (L -= s, host += s). The
//    wait costs max(0, d2h(s) - forward_ms). When the stage's backward begins, s is
//    allocated on the device again (L += s) and copied back; each tensor is waited for only
//    when the backward uses it, so the copies overlap the backward and cost
//    max(0, h2d(s) - backward_ms). Peaks are those of save k.
//  - checkpoint [c, d) offloaded: its input a_c is copied out during the no-grad forward;
//    after it the step waits (max(0, d2h(x) - no-grad forward of [c, d))) and a_c's device
//    bytes are freed. When the checkpoint's backward begins, a_c is allocated again and
//    copied back before the recompute, which needs it at once: h2d(x), not hidden.
//  - Offload is top-level only. A save's output and a checkpoint's other tensors stay on
//    the device: the next node computes with them.
// d2h and h2d are bytes over the profile's measured bandwidths (host_link). The host bytes
// never count against the budget, which bounds the device; the plan reports their peak.
#include <cstdint>

#include "tidemark/core/plan.hpp"
#include "tidemark/planner/chain.hpp"

namespace tidemark::planner {

// The plan's predicted peak and times (Prediction, core/plan.hpp: the one type a plan
// carries and the simulator computes). Throws FormatError when the plan does not fit the
// chain (ranges, unknown variant).
Prediction simulate(const ChainCosts& chain, const PlanNode& root);

}  // namespace tidemark::planner
