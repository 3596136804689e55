#pragma once
// Your own model as a chain of stages (Note [stage signature] in chain.hpp), built from its
// modules, and run with any checkpoint plan in your own training loop.
//
//   tidemark::Chain chain("llama");
//   chain.add("embed", model->embed, [&](const Tensor& ids) { return model->embed(ids); });
//   chain.add_each<DecoderImpl>("block", model->layers,
//       [](DecoderImpl& b, const Tensor& x, const StageContext& c) { return b.forward(x, c.tensor("rope")); });
//   chain.add("head", model->head, [&](const Tensor& x) { return model->head(x); });
//   chain.add_loss([](const Tensor& logits, const Tensor& y) { return cross_entropy(...); });
//
// A stage names the module whose parameters it uses: the checkpoint recomputes it and gives
// those parameters their gradients, and the chain's digest is made from their shapes (a plan
// for another model is refused). Stages whose module type and parameter shapes repeat are
// blocks (kind "block"): uniform checkpointing, Hugging Face's, wraps those and nothing else.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <torch/torch.h>
#include <type_traits>
#include <vector>

#include "tidemark/core/error.hpp"
#include "tidemark/core/plan.hpp"
#include "tidemark/runtime/chain.hpp"
#include "tidemark/runtime/checkpoint.hpp"
#include "tidemark/runtime/data.hpp"
#include "tidemark/runtime/executor.hpp"

namespace tidemark::runtime {

// One stage: what it computes and the module whose parameters it uses (null: none).
struct Stage {
  using Fn = std::function<Activations(const Activations&, const StageContext&)>;
  std::string name;
  Fn run;
  std::shared_ptr<torch::nn::Module> module;
  std::string kind;  // empty: "block" when repeated, else "stage" (Chain decides)
  // Other ways to run the stage, by name: the same outputs, less kept for backward
  // (selective recompute). The profiler measures each, the planner may choose one.
  std::vector<std::pair<std::string, Fn>> variants;
};

namespace detail {
// A stage handed another number of tensors than its function takes.
[[noreturn]] void wrong_arity(const std::string& stage, std::size_t takes, std::size_t handed);
inline const Activations& arity(const std::string& stage, const Activations& a, std::size_t takes) {
  if (a.size() != takes) wrong_arity(stage, takes, a.size());
  return a;
}

// A stage function from a callable taking (inputs..., ctx), (inputs...), (Activations, ctx)
// or (Activations), returning a Tensor, a std::tuple of Tensors or Activations. `stage`
// names it when the previous stage hands it another number of tensors.
template <typename F>
Stage::Fn stage_fn(std::string stage, F f) {
  return [stage, f = std::move(f)](const Activations& a, const StageContext& c) mutable -> Activations {
    if constexpr (std::is_invocable_v<F&, const Activations&, const StageContext&>) {
      return to_activations(f(a, c));
    } else if constexpr (std::is_invocable_v<F&, const Activations&>) {
      return to_activations(f(a));
    } else if constexpr (std::is_invocable_v<F&, const torch::Tensor&, const StageContext&>) {
      return to_activations(f(arity(stage, a, 1)[0], c));
    } else if constexpr (std::is_invocable_v<F&, const torch::Tensor&>) {
      return to_activations(f(arity(stage, a, 1)[0]));
    } else if constexpr (std::is_invocable_v<F&, const torch::Tensor&, const torch::Tensor&, const StageContext&>) {
      return to_activations(f(arity(stage, a, 2)[0], a[1], c));
    } else if constexpr (std::is_invocable_v<F&, const torch::Tensor&, const torch::Tensor&>) {
      return to_activations(f(arity(stage, a, 2)[0], a[1]));
    } else {
      static_assert(std::is_invocable_v<F&, const Activations&>,
                    "a stage function takes (const Tensor&[, const Tensor&][, const StageContext&]) or "
                    "(const Activations&[, const StageContext&])");
      return {};
    }
  };
}

// The same, for a function of a block: fn(T& block, inputs..., ctx) and the forms above.
template <typename T, typename F>
Stage::Fn block_fn(std::string stage, std::shared_ptr<T> block, F fn) {
  return [stage, block, fn = std::move(fn)](const Activations& a, const StageContext& c) mutable -> Activations {
    if constexpr (std::is_invocable_v<F&, T&, const Activations&, const StageContext&>) {
      return to_activations(fn(*block, a, c));
    } else if constexpr (std::is_invocable_v<F&, T&, const torch::Tensor&, const StageContext&>) {
      return to_activations(fn(*block, arity(stage, a, 1)[0], c));
    } else if constexpr (std::is_invocable_v<F&, T&, const torch::Tensor&>) {
      return to_activations(fn(*block, arity(stage, a, 1)[0]));
    } else if constexpr (std::is_invocable_v<F&, T&, const torch::Tensor&, const torch::Tensor&, const StageContext&>) {
      return to_activations(fn(*block, arity(stage, a, 2)[0], a[1], c));
    } else {
      static_assert(std::is_invocable_v<F&, T&, const Activations&>,
                    "a block function takes (T&, const Tensor&[, const Tensor&][, const StageContext&]) or "
                    "(T&, const Activations&[, const StageContext&])");
      return to_activations(fn(*block, a));
    }
  };
}
template <typename M>
std::shared_ptr<torch::nn::Module> module_ptr(const M& m) {
  if constexpr (is_module_holder_v<M>) {
    return m.is_empty() ? nullptr : m.ptr();
  } else if constexpr (std::is_same_v<M, std::nullptr_t>) {
    return nullptr;
  } else {
    return m;  // a std::shared_ptr to a module
  }
}
}  // namespace detail

class Chain : public ChainModule {
 public:
  explicit Chain(std::string name = "custom");
  // Each module of `modules` one stage, in order, called with the stage's inputs (one to
  // four tensors) and returning a Tensor or a std::tuple of Tensors. Names come from the
  // Sequential's keys, or the module type and its count ("linear.0") where keys are numbers.
  explicit Chain(torch::nn::Sequential modules, std::string name = "sequential");

  Chain& add(Stage stage);
  // add("embed", model->embed, [&](const Tensor& ids) { return model->embed(ids); })
  template <typename M, typename F>
  Chain& add(std::string name, const M& module, F fn) {
    auto run = detail::stage_fn(name, std::move(fn));
    return add(Stage{std::move(name), std::move(run), detail::module_ptr(module), {}, {}});
  }
  // One stage per module of `list`, named name.0, name.1, ..., each run as
  // fn(block, inputs..., ctx) with the module as a T (its Impl class).
  template <typename T, typename F>
  Chain& add_each(const std::string& name, const torch::nn::ModuleList& list, F fn) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string stage = name + "." + std::to_string(i);
      std::shared_ptr<T> block = std::dynamic_pointer_cast<T>(list->ptr(i));
      if (!block) {
        throw ChainError(stage + ": the module is a " + list->ptr(i)->name() +
                         ", not the type add_each was given; give add_each<" + list->ptr(i)->name() + ">");
      }
      add(Stage{stage, detail::block_fn(stage, block, fn), block, {}, {}});
    }
    return *this;
  }
  // A variant of the stage `name`, or of every stage add_each made under `name`:
  // fn(block, inputs..., ctx) with the stage's module as a T, computing what the stage
  // computes while keeping less for backward (e.g. part of it under checkpoint(module, x)).
  // The profiler measures it and the planner may choose it stage by stage.
  template <typename T, typename F>
  Chain& add_variant(const std::string& name, const std::string& variant, F fn) {
    if (variant.empty() || variant == "full") throw ChainError("a variant needs a name other than \"\" and \"full\"");
    int found = 0;
    for (auto& s : stages_) {
      if (!belongs(s.name, name)) continue;
      std::shared_ptr<T> block = std::dynamic_pointer_cast<T>(s.module);
      if (!block) {
        throw ChainError(s.name + ": variant \"" + variant + "\" is for a module of another type than " +
                         (s.module ? s.module->name() : std::string("none")));
      }
      for (const auto& v : s.variants) {
        if (v.first == variant) throw ChainError(s.name + " has a variant \"" + variant + "\" already");
      }
      s.variants.emplace_back(variant, detail::block_fn(s.name, block, fn));
      ++found;
    }
    if (found == 0) throw ChainError("add_variant: no stage is named \"" + name + "\" or \"" + name + ".N\"");
    return *this;
  }
  // The last stage: loss(outputs..., targets) or loss(outputs, ctx) -> scalar (kind "loss").
  template <typename F>
  Chain& add_loss(F fn) {
    Stage::Fn run;
    if constexpr (std::is_invocable_v<F&, const torch::Tensor&, const torch::Tensor&>) {
      run = [fn](const Activations& a, const StageContext& c) mutable {
        return Activations{fn(detail::arity("loss", a, 1)[0], c.targets)};
      };
    } else {
      run = detail::stage_fn("loss", std::move(fn));
    }
    return add(Stage{"loss", std::move(run), nullptr, "loss", {}});
  }

  // What runs: a plan (PlanMismatch, naming `source`, when made for another chain), every block
  // checkpointed (Hugging Face's gradient_checkpointing_enable), or nothing checkpointed
  // (the default).
  void use(const Plan& plan, const std::string& source = "plan", const CheckpointOptions& options = {});
  void checkpoint_every_block(const CheckpointOptions& options = {});
  void no_checkpointing();
  PlanNode current_plan() const;
  // The plan given to use(), while it is the one that runs.
  const std::optional<Plan>& plan() const { return plan_; }
  std::string mode() const { return mode_; }  // "none", "uniform" or "plan"

  // The whole chain on one step's batch; the loss when the chain ends with one (one scalar).
  torch::Tensor forward(const Batch& batch);
  Activations forward(const Activations& inputs, const StageContext& ctx);

  // ChainModule
  int num_stages() const override { return static_cast<int>(stages_.size()); }
  std::vector<std::string> stage_variants(int k) const override;
  std::string stage_name(int k) const override;
  std::string stage_kind(int k) const override;
  Activations run_stage(int k, const Activations& inputs, const StageContext& ctx,
                        const std::string& variant) override;
  std::vector<torch::Tensor> stage_parameters(int k) override;
  std::string digest() const override;
  const std::string& name() const { return name_; }
  // Every parameter of every stage, each once, in stage order.
  std::vector<torch::Tensor> parameters() const;
  std::vector<torch::Tensor> buffers() const;

 private:
  // `stage` is `name` or name.N
  static bool belongs(const std::string& stage, const std::string& name);
  const Stage& stage(int k) const;
  void refresh_kinds();

  std::string name_;
  std::vector<Stage> stages_;
  std::vector<std::string> kinds_;
  std::string mode_ = "none";
  std::unique_ptr<PlanExecutor> executor_;
  std::optional<Plan> plan_;
  // Set by a Session that records a trace: the batch's tensors are inputs.
  friend class Session;
  std::function<void(const Batch&)> on_batch_;
};

}  // namespace tidemark::runtime
