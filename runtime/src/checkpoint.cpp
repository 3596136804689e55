// CheckpointFunction: the autograd Function behind tidemark::runtime::checkpoint.
//
// Sections: options; RNG and autocast guards; the Function (forward, backward); API.
#include "tidemark/runtime/checkpoint.hpp"

#include "autocast_state.hpp"
#include "rng_state.hpp"

#include <atomic>
#include <fmt/format.h>
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/functions/basic_ops.h>
#include <torch/csrc/autograd/variable.h>

namespace tidemark::runtime {

// ---------------------------------------------------------------- options

void CheckpointOptions::validate() const {
  if (!use_reentrant) {
    throw UnsupportedOption(
        "gradient checkpointing option use_reentrant=false is not available in C++: PyTorch's "
        "non-reentrant checkpoint uses saved-tensor hooks that LibTorch does not expose. Leave "
        "use_reentrant at true: tidemark's reentrant checkpoint already gives parameter "
        "gradients when no input requires grad, the usual reason to pick use_reentrant=false");
  }
  if (determinism_check != "default" && determinism_check != "none") {
    throw UnsupportedOption(fmt::format(
        "gradient checkpointing option determinism_check='{}' is unknown; use 'default' or 'none'",
        determinism_check));
  }
  if (debug) {
    throw UnsupportedOption(
        "gradient checkpointing option debug=true is not available in C++ (PyTorch's debug mode "
        "logs recomputed Python operators); use `tidemark train --trace` to see recompute spans");
  }
}

CheckpointOptions CheckpointOptions::from_kwargs(const std::map<std::string, std::string>& kwargs) {
  CheckpointOptions o;
  auto parse_bool = [](const std::string& key, const std::string& v) {
    if (v == "true" || v == "True" || v == "1") return true;
    if (v == "false" || v == "False" || v == "0") return false;
    throw UnsupportedOption(
        fmt::format("gradient checkpointing option {}='{}' is not true or false", key, v));
  };
  for (const auto& [key, value] : kwargs) {
    if (key == "preserve_rng_state") {
      o.preserve_rng_state = parse_bool(key, value);
    } else if (key == "use_reentrant") {
      o.use_reentrant = parse_bool(key, value);
    } else if (key == "determinism_check") {
      o.determinism_check = value;
    } else if (key == "debug") {
      o.debug = parse_bool(key, value);
    } else if (key == "context_fn") {
      throw UnsupportedOption(
          "gradient checkpointing option context_fn takes Python context managers and has no C++ "
          "equivalent; for selective recompute use a tidemark plan with block variants");
    } else {
      throw UnsupportedOption(fmt::format(
          "unknown gradient checkpointing option '{}'; known: preserve_rng_state, use_reentrant, "
          "determinism_check, debug",
          key));
    }
  }
  o.validate();
  return o;
}

// ---------------------------------------------------------------- RNG and autocast guards

namespace {

std::atomic<std::uint64_t> g_recomputes{0};
thread_local int t_recompute_depth = 0;

// Sets the generators to the forward's state for the recompute and puts back the state the
// backward had, so checkpointing does not perturb the random stream of the rest of training.
class RngFork {
 public:
  RngFork(const RngSnapshot& forward_state, const at::Tensor& input) {
    if (!forward_state.valid) return;
    current_ = take_rng(input.device());
    restore_rng(forward_state);
  }
  ~RngFork() {
    if (current_.valid) restore_rng(current_);
  }

 private:
  RngSnapshot current_;
};

struct RecomputeDepth {
  RecomputeDepth() { ++t_recompute_depth; }
  ~RecomputeDepth() { --t_recompute_depth; }
};

// ---------------------------------------------------------------- the Function

// What backward needs besides the saved input. Held by the node through an IValue capsule,
// so it lives exactly as long as the graph does.
struct Segment : torch::CustomClassHolder {
  SegmentFn fn;
  CheckpointOptions options;
  std::vector<at::Tensor> params;
  bool input_requires_grad = false;
  RngSnapshot rng;
  AutocastState autocast;
  std::vector<int64_t> out_sizes;
  at::ScalarType out_dtype = at::kFloat;
};

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, at::TensorList /*params*/,
                            c10::intrusive_ptr<Segment> seg) {
    // Runs in no-grad mode (Function::apply sees to it): nothing is saved for backward.
    if (seg->options.preserve_rng_state) seg->rng = take_rng(input.device());
    seg->autocast = AutocastState::current();
    at::Tensor out = seg->fn(input);
    TORCH_CHECK(out.defined(), "tidemark checkpoint: the segment returned an undefined tensor");
    seg->out_sizes = out.sizes().vec();
    seg->out_dtype = out.scalar_type();
    ctx->save_for_backward({input});
    ctx->saved_data["segment"] = c10::IValue::make_capsule(seg);
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto seg = c10::static_intrusive_pointer_cast<Segment>(ctx->saved_data["segment"].toCapsule());
    const at::Tensor input = ctx->get_saved_variables().at(0);
    g_recomputes.fetch_add(1, std::memory_order_relaxed);

    at::Tensor x = input.detach();
    x.requires_grad_(seg->input_requires_grad);
    at::Tensor out;
    {
      RecomputeDepth depth;
      RngFork rng(seg->rng, input);
      AutocastRestore autocast(seg->autocast);
      torch::AutoGradMode grad(true);
      out = seg->fn(x);
    }
    if (seg->options.determinism_check == "default" &&
        (out.sizes().vec() != seg->out_sizes || out.scalar_type() != seg->out_dtype)) {
      TORCH_CHECK(false, "tidemark checkpoint: the recompute produced ", out.sizes(), " ",
                  out.scalar_type(), " but the forward produced ", c10::IntArrayRef(seg->out_sizes),
                  " ", seg->out_dtype,
                  "; the segment must compute the same thing twice (no data-dependent control "
                  "flow on random numbers, or pass determinism_check=none)");
    }

    const size_t n_params = seg->params.size();
    variable_list result(2 + n_params);  // input, params..., the segment capsule
    if (!out.requires_grad()) return result;  // nothing in the segment needs a gradient

    // Grads are captured for these edges rather than accumulated, then returned through the
    // node so that the engine (and any gradient hooks, e.g. a data-parallel reducer) sees them
    // exactly as for an un-checkpointed parameter.
    torch::autograd::edge_list wanted;
    std::vector<int> slot;
    auto want = [&](const at::Tensor& t, int at) {
      if (!t.requires_grad()) return;
      auto fn = t.grad_fn();
      if (!fn) fn = torch::autograd::impl::try_get_grad_accumulator(t);
      if (fn) {
        wanted.emplace_back(std::move(fn), t.output_nr());
      } else {
        // Not used by the recompute: an edge that receives nothing (autograd's own trick).
        wanted.emplace_back(std::make_shared<torch::autograd::Identity>(), 0);
      }
      slot.push_back(at);
    };
    want(x, 0);
    for (size_t i = 0; i < n_params; ++i) want(seg->params[i], static_cast<int>(1 + i));

    // Keep only the graph of the recomputed output, not its storage: backward does not need
    // it, and holding it would add a whole activation to the peak.
    torch::autograd::edge_list roots{torch::autograd::impl::gradient_edge(out)};
    out.reset();
    x.reset();
    variable_list grads = torch::autograd::Engine::get_default_engine().execute(
        roots, {grad_outputs.at(0)}, /*keep_graph=*/false, /*create_graph=*/false,
        /*accumulate_grad=*/false, wanted);
    for (size_t i = 0; i < grads.size(); ++i) result[slot[i]] = std::move(grads[i]);
    ctx->saved_data.clear();
    return result;
  }
};

}  // namespace

// ---------------------------------------------------------------- API

torch::Tensor checkpoint(SegmentFn fn, const torch::Tensor& input,
                         const std::vector<torch::Tensor>& params,
                         const CheckpointOptions& options) {
  bool needs_graph = torch::GradMode::is_enabled() && input.requires_grad();
  for (const auto& p : params) needs_graph = needs_graph || (torch::GradMode::is_enabled() && p.requires_grad());
  if (!needs_graph) return fn(input);
  options.validate();
  auto seg = c10::make_intrusive<Segment>();
  seg->fn = std::move(fn);
  seg->options = options;
  seg->params = params;
  seg->input_requires_grad = input.requires_grad();
  return CheckpointFunction::apply(input, at::TensorList(params), seg);
}

std::uint64_t checkpoint_state_bytes(const torch::Device& device, const CheckpointOptions& options) {
  // Generator states are host tensors: on a GPU they cost no device memory, and the budget
  // and the allocator hook count device memory only.
  if (!options.preserve_rng_state || device.is_cuda()) return 0;
  RngSnapshot s = take_rng(device);
  return s.cpu.nbytes() + (s.cuda.defined() ? s.cuda.nbytes() : 0);
}

std::uint64_t recompute_count() { return g_recomputes.load(std::memory_order_relaxed); }

bool in_recompute() { return t_recompute_depth > 0; }

}  // namespace tidemark::runtime
