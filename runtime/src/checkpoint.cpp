// CheckpointFunction: the autograd Function behind tidemark::runtime::checkpoint.
//
// Sections: options; RNG and autocast guards; the Function (forward, backward); API.
#include "tidemark/runtime/checkpoint.hpp"

#include "autocast_state.hpp"
#include "offload_set.hpp"
#include "rng_state.hpp"
#include "tidemark/runtime/offload.hpp"

#include <atomic>
#include <unordered_set>
#include <fmt/format.h>
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>
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
    } else if (key == "offload") {
      o.offload = parse_bool(key, value);
    } else if (key == "context_fn") {
      throw UnsupportedOption(
          "gradient checkpointing option context_fn takes Python context managers and has no C++ "
          "equivalent; for selective recompute use a tidemark plan with block variants");
    } else {
      throw UnsupportedOption(fmt::format(
          "unknown gradient checkpointing option '{}'; known: preserve_rng_state, use_reentrant, "
          "determinism_check, debug, offload",
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

// What backward needs besides the saved inputs. Held by the node through an IValue capsule,
// so it lives exactly as long as the graph does.
struct Segment : torch::CustomClassHolder {
  SegmentFn fn;
  CheckpointOptions options;
  std::vector<at::Tensor> params;
  std::vector<bool> input_requires_grad;
  RngSnapshot rng;
  AutocastState autocast;
  std::vector<std::vector<int64_t>> out_sizes;
  std::vector<at::ScalarType> out_dtypes;
  // options.offload: the inputs in host memory from the forward to the backward (null where
  // an input stays on the device), and how to rebuild each on its restored storage.
  std::vector<std::unique_ptr<detail::StorageTrip>> offloaded;
  std::vector<std::optional<detail::ViewOf>> offloaded_views;
};

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;


// Note [captured tensors]
// The recompute's graph must end at the node's inputs and parameters (the wanted edges). A
// gradient accumulator anywhere else belongs to a tensor that requires grad and that the
// function captured: the nested backward would compute nothing for it. Found by walking
// the recomputed graph, which stops at wanted nodes, so a correct segment costs one visit
// per node it created.
void refuse_captured(const torch::autograd::edge_list& roots, const torch::autograd::edge_list& wanted) {
  std::unordered_set<const torch::autograd::Node*> stop, seen;
  for (const auto& e : wanted) stop.insert(e.function.get());
  std::vector<const torch::autograd::Node*> todo;
  for (const auto& e : roots) todo.push_back(e.function.get());
  while (!todo.empty()) {
    const torch::autograd::Node* n = todo.back();
    todo.pop_back();
    if (!n || stop.count(n) || !seen.insert(n).second) continue;
    if (const auto* acc = dynamic_cast<const torch::autograd::AccumulateGrad*>(n)) {
      TORCH_CHECK(false, "tidemark checkpoint: the checkpointed function uses a tensor ",
                  acc->variable.sizes(), " that requires grad but is neither an input nor a "
                  "parameter of the checkpoint, so it would get no gradient. Pass it as an input "
                  "(checkpoint(fn, x, it)), or checkpoint the module it belongs to "
                  "(checkpoint(module, x)); in a tidemark::Chain, give the stage its module");
    }
    for (const auto& e : n->next_edges()) todo.push_back(e.function.get());
  }
}

struct CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
  // Inputs come as a TensorList: a std::vector argument would not be seen as tensors.
  static variable_list forward(AutogradContext* ctx, at::TensorList input_list, at::TensorList /*params*/,
                               c10::intrusive_ptr<Segment> seg) {
    const variable_list inputs = input_list.vec();
    // Runs in no-grad mode (Function::apply sees to it): nothing is saved for backward.
    // Unused outputs get no gradient tensor at all, rather than a zero-filled one.
    ctx->set_materialize_grads(false);
    if (seg->options.preserve_rng_state) seg->rng = take_rng(inputs.at(0).device());
    seg->autocast = AutocastState::current();
    // Offload: the copies out run while the segment's no-grad forward does (Note [offload]).
    if (seg->options.offload) {
      seg->offloaded.resize(inputs.size());
      seg->offloaded_views.resize(inputs.size());
      for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (!inputs[i].requires_grad()) continue;
        seg->offloaded[i] = std::make_unique<detail::StorageTrip>(inputs[i], detail::CopyStage::current());
        seg->offloaded_views[i].emplace(inputs[i]);
      }
    }
    variable_list out = seg->fn(inputs);
    TORCH_CHECK(!out.empty(), "tidemark checkpoint: the segment returned no tensor");
    for (const auto& t : out) {
      TORCH_CHECK(t.defined(), "tidemark checkpoint: the segment returned an undefined tensor");
      seg->out_sizes.push_back(t.sizes().vec());
      seg->out_dtypes.push_back(t.scalar_type());
    }
    variable_list kept = inputs;
    for (std::size_t i = 0; i < seg->offloaded.size(); ++i) {
      if (!seg->offloaded[i]) continue;
      // The step waits for the copy; the device bytes go when the caller drops the input.
      seg->offloaded[i]->wait_out();
      seg->offloaded[i]->keep_on_host();
      kept[i] = at::Tensor();
    }
    ctx->save_for_backward(kept);
    ctx->saved_data["segment"] = c10::IValue::make_capsule(seg);
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto seg = c10::static_intrusive_pointer_cast<Segment>(ctx->saved_data["segment"].toCapsule());
    variable_list inputs = ctx->get_saved_variables();
    g_recomputes.fetch_add(1, std::memory_order_relaxed);
    // Offloaded inputs come back first: the recompute needs them at once.
    for (std::size_t i = 0; i < seg->offloaded.size(); ++i) {
      if (seg->offloaded[i]) inputs[i] = seg->offloaded_views[i]->on(seg->offloaded[i]->take_in());
    }

    variable_list xs;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      xs.push_back(inputs[i].detach());
      xs.back().requires_grad_(seg->input_requires_grad[i]);
    }
    variable_list out;
    {
      RecomputeDepth depth;
      RngFork rng(seg->rng, inputs.at(0));
      AutocastRestore autocast(seg->autocast);
      torch::AutoGradMode grad(true);
      out = seg->fn(xs);
    }
    if (seg->options.determinism_check == "default") {
      bool same = out.size() == seg->out_sizes.size();
      for (std::size_t i = 0; same && i < out.size(); ++i) {
        same = out[i].sizes().vec() == seg->out_sizes[i] && out[i].scalar_type() == seg->out_dtypes[i];
      }
      TORCH_CHECK(same, "tidemark checkpoint: the recompute produced other outputs (count, shape or "
                  "dtype) than the forward; the segment must compute the same thing twice (no "
                  "data-dependent control flow on random numbers, or pass determinism_check=none)");
    }

    const std::size_t n_in = inputs.size();
    const std::size_t n_params = seg->params.size();
    variable_list result(n_in + n_params + 1);  // inputs..., params..., the segment capsule

    // Note [gradients inside a recompute]: the backward through the recomputed graph
    // accumulates the parameters' gradients itself, stage by stage, as an un-checkpointed
    // backward does, and returns none for them. So their AccumulateGrad hooks (a data-parallel
    // reducer, ZeRO's per-stage reduction that frees each gradient once copied) fire while
    // the segment's backward goes on, not all at once when it ends. The inputs' gradients
    // are accumulated into the detached inputs and returned from there.
    torch::autograd::edge_list wanted;
    auto want = [&](const at::Tensor& t) {
      if (!t.requires_grad()) return;
      auto fn = t.grad_fn();
      if (!fn) fn = torch::autograd::impl::grad_accumulator(t);
      wanted.emplace_back(std::move(fn), t.output_nr());
    };
    for (std::size_t i = 0; i < n_in; ++i) want(xs[i]);
    for (std::size_t i = 0; i < n_params; ++i) want(seg->params[i]);

    // The outputs that carry a gradient back. An output that is an input passed through
    // hands its gradient straight to that input.
    torch::autograd::edge_list roots;
    variable_list root_grads;
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (i >= grad_outputs.size() || !grad_outputs[i].defined() || !out[i].requires_grad()) continue;
      bool passed = false;
      for (std::size_t j = 0; j < n_in && !passed; ++j) {
        if (out[i].unsafeGetTensorImpl() == xs[j].unsafeGetTensorImpl()) {
          result[j] = result[j].defined() ? result[j] + grad_outputs[i] : grad_outputs[i];
          passed = true;
        }
      }
      if (passed) continue;
      roots.push_back(torch::autograd::impl::gradient_edge(out[i]));
      root_grads.push_back(grad_outputs[i]);
    }
    if (roots.empty() || wanted.empty()) return result;
    refuse_captured(roots, wanted);

    // Keep only the graph of the recomputed outputs, not their storage: backward does not
    // need it, and holding it would add a whole activation to the peak.
    out.clear();
    torch::autograd::Engine::get_default_engine().execute(roots, root_grads, /*keep_graph=*/false,
                                                          /*create_graph=*/false, /*accumulate_grad=*/true,
                                                          wanted);
    for (std::size_t i = 0; i < n_in; ++i) {
      if (!xs[i].requires_grad() || !xs[i].grad().defined()) continue;
      result[i] = result[i].defined() ? result[i] + xs[i].grad() : xs[i].grad();
    }
    xs.clear();
    ctx->saved_data.clear();
    return result;
  }
};

}  // namespace

// ---------------------------------------------------------------- API

Activations checkpoint_segment(SegmentFn fn, const Activations& inputs, const std::vector<torch::Tensor>& params,
                               const CheckpointOptions& options) {
  if (inputs.empty()) throw UserError("checkpoint: give the checkpointed function at least one input tensor");
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) {
      throw UserError(fmt::format("checkpoint: input {} is an undefined tensor; pass only defined tensors "
                                  "(leave an optional one out, or capture it in the function)", i));
    }
  }
  bool needs_graph = false;
  if (torch::GradMode::is_enabled()) {
    for (const auto& t : inputs) needs_graph = needs_graph || t.requires_grad();
    for (const auto& p : params) needs_graph = needs_graph || p.requires_grad();
  }
  if (!needs_graph) return fn(inputs);
  options.validate();
  if (options.offload && !can_offload(inputs[0].device())) {
    throw UnsupportedOption(fmt::format(
        "gradient checkpointing option offload=true keeps each checkpoint's input in pinned host "
        "memory, which needs a CUDA device; this model runs on {}, where there is no separate device "
        "memory to free. Leave offload at false",
        inputs[0].device().str()));
  }
  auto seg = c10::make_intrusive<Segment>();
  seg->fn = std::move(fn);
  seg->options = options;
  seg->params = params;
  for (const auto& t : inputs) seg->input_requires_grad.push_back(t.requires_grad());
  return CheckpointFunction::apply(at::TensorList(inputs), at::TensorList(params), seg);
}

torch::Tensor detail::checkpoint_one(std::function<torch::Tensor(const torch::Tensor&)> fn, const torch::Tensor& input,
                                     const std::vector<torch::Tensor>& params, const CheckpointOptions& options) {
  SegmentFn segment = [fn = std::move(fn)](const Activations& a) { return Activations{fn(a.at(0))}; };
  return checkpoint_segment(std::move(segment), {input}, params, options).at(0);
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
