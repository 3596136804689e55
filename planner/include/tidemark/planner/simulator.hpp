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
//  - top level: the gradient of the final output is created when backward starts and held
//    until it returns (loss.backward() keeps it), the final output (the loss) is kept by the
//    caller, and after backward the optimizer step peaks at L + optimizer_peak.
#include <cstdint>

#include "tidemark/core/plan.hpp"
#include "tidemark/planner/chain.hpp"

namespace tidemark::planner {

// The plan's predicted peak and times (Prediction, core/plan.hpp: the one type a plan
// carries and the simulator computes). Throws FormatError when the plan does not fit the
// chain (ranges, unknown variant).
Prediction simulate(const ChainCosts& chain, const PlanNode& root);

}  // namespace tidemark::planner
