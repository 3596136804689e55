// tidemark::Chain: a user's model as stages (own_model.hpp).
#include "tidemark/runtime/own_model.hpp"

#include <cctype>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <map>
#include <set>

#include "tidemark/core/model_config.hpp"

namespace tidemark::runtime {
namespace {

// "(anonymous namespace)::ResidualImpl" -> "residual"
std::string short_type(const std::string& type) {
  std::string s = type.substr(type.rfind(':') == std::string::npos ? 0 : type.rfind(':') + 1);
  if (s.size() > 4 && s.compare(s.size() - 4, 4, "Impl") == 0) s.resize(s.size() - 4);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s.empty() ? "stage" : s;
}

bool is_number(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// The module's type and parameter shapes: what makes two stages the same kind of block,
// and what the digest is made of.
std::string signature(const Stage& s) {
  if (!s.module) return "-";
  std::string sig = s.module->name();
  for (const auto& p : s.module->parameters()) sig += fmt::format("[{}]", fmt::join(p.sizes(), "x"));
  return sig;
}

// One to four tensors into a Sequential's AnyModule; a Tensor, a tuple or a vector out.
torch::nn::AnyValue forward_any(torch::nn::AnyModule& m, const Activations& a, const std::string& name) {
  switch (a.size()) {
    case 1: return m.any_forward(a[0]);
    case 2: return m.any_forward(a[0], a[1]);
    case 3: return m.any_forward(a[0], a[1], a[2]);
    case 4: return m.any_forward(a[0], a[1], a[2], a[3]);
    default:
      throw ChainError(fmt::format("stage {}: a Sequential's module takes one to four tensors, this one was "
                                   "handed {}; build the chain with Chain::add instead",
                                   name, a.size()));
  }
}

Activations call_any(torch::nn::AnyModule& m, const Activations& a, const std::string& name) {
  torch::nn::AnyValue v = [&] {
    try {
      return forward_any(m, a, name);
    } catch (const c10::Error& e) {
      // AnyModule's own words for a wrong argument count or type, with the stage's name.
      throw ChainError(fmt::format("stage {}: {}", name, e.what_without_backtrace()));
    }
  }();
  if (auto* t = v.try_get<torch::Tensor>()) return {*t};
  if (auto* t = v.try_get<std::tuple<torch::Tensor, torch::Tensor>>()) return {std::get<0>(*t), std::get<1>(*t)};
  if (auto* t = v.try_get<std::tuple<torch::Tensor, torch::Tensor, torch::Tensor>>()) {
    return {std::get<0>(*t), std::get<1>(*t), std::get<2>(*t)};
  }
  if (auto* t = v.try_get<std::vector<torch::Tensor>>()) return *t;
  throw ChainError(fmt::format("stage {}: the module returned a {}; a stage returns a Tensor, a "
                               "std::tuple of two or three Tensors or a std::vector<Tensor>",
                               name, v.type_info().name()));
}

}  // namespace

Chain::Chain(std::string name) : name_(std::move(name)) {}

Chain::Chain(torch::nn::Sequential modules, std::string name) : name_(std::move(name)) {
  if (modules->size() == 0) throw ChainError("Chain: the Sequential has no modules");
  std::map<std::string, int> count;
  const auto children = modules->named_children();
  for (std::size_t i = 0; i < modules->size(); ++i) {
    const std::string key = children[i].key();
    std::string stage_name = key;
    if (is_number(key)) {
      const std::string type = short_type(children[i].value()->name());
      stage_name = fmt::format("{}.{}", type, count[type]++);
    }
    torch::nn::AnyModule any = modules->begin()[static_cast<std::ptrdiff_t>(i)];
    add(Stage{stage_name,
              [any, stage_name](const Activations& a, const StageContext&) mutable { return call_any(any, a, stage_name); },
              modules->ptr(i), {}, {}});
  }
}

Chain& Chain::add(Stage stage) {
  if (!stage.run) throw ChainError(fmt::format("Chain {}: stage \"{}\" has no function", name_, stage.name));
  if (!stages_.empty() && stages_.back().kind == "loss") {
    throw ChainError(fmt::format("Chain {}: stage \"{}\" comes after the loss; add the loss last", name_, stage.name));
  }
  for (const auto& s : stages_) {
    if (s.name == stage.name) {
      throw ChainError(fmt::format("Chain {}: two stages are named \"{}\"; give each its own name", name_, stage.name));
    }
  }
  stages_.push_back(std::move(stage));
  refresh_kinds();
  executor_.reset();
  plan_.reset();
  mode_ = "none";
  return *this;
}

void Chain::refresh_kinds() {
  std::map<std::string, int> seen;
  for (const auto& s : stages_) {
    if (s.module) ++seen[signature(s)];
  }
  kinds_.clear();
  for (const auto& s : stages_) {
    if (!s.kind.empty()) {
      kinds_.push_back(s.kind);
    } else {
      kinds_.push_back(s.module && seen[signature(s)] > 1 ? "block" : "stage");
    }
  }
}

const Stage& Chain::stage(int k) const {
  if (k < 0 || k >= num_stages()) {
    throw std::out_of_range(fmt::format("Chain {}: no stage {} (it has {})", name_, k, num_stages()));
  }
  return stages_[static_cast<std::size_t>(k)];
}

std::string Chain::stage_name(int k) const { return stage(k).name; }
std::string Chain::stage_kind(int k) const {
  stage(k);
  return kinds_[static_cast<std::size_t>(k)];
}

Activations Chain::run_stage(int k, const Activations& inputs, const StageContext& ctx, const std::string& variant) {
  stage(k);  // in range
  Stage& s = stages_[static_cast<std::size_t>(k)];
  if (variant.empty() || variant == "full") return s.run(inputs, ctx);
  for (auto& v : s.variants) {
    if (v.first == variant) return v.second(inputs, ctx);
  }
  throw PlanMismatch(fmt::format("stage {} has no variant \"{}\"", s.name, variant));
}

std::vector<std::string> Chain::stage_variants(int k) const {
  std::vector<std::string> out;
  for (const auto& v : stage(k).variants) out.push_back(v.first);
  return out;
}

bool Chain::belongs(const std::string& stage, const std::string& name) {
  if (stage == name) return true;
  return stage.size() > name.size() + 1 && stage.compare(0, name.size(), name) == 0 && stage[name.size()] == '.' &&
         is_number(stage.substr(name.size() + 1));
}

void detail::wrong_arity(const std::string& stage, std::size_t takes, std::size_t handed) {
  throw ChainError(fmt::format("stage {} takes {} tensor{} but the stage before it hands it {}; make the "
                               "previous stage return what this one takes (or take const Activations&)",
                               stage, takes, takes == 1 ? "" : "s", handed));
}

std::vector<torch::Tensor> Chain::stage_parameters(int k) {
  const Stage& s = stage(k);
  if (!s.module) return {};
  return s.module->parameters();
}

namespace {

// The tensors `of` gives for every stage's module, each once (stages may share a module),
// in stage order.
std::vector<torch::Tensor> each_once(const std::vector<Stage>& stages,
                                     std::vector<torch::Tensor> (torch::nn::Module::*of)(bool) const) {
  std::vector<torch::Tensor> out;
  std::set<const void*> seen;
  for (const auto& s : stages) {
    if (!s.module) continue;
    for (const auto& t : ((*s.module).*of)(true)) {
      if (seen.insert(t.unsafeGetTensorImpl()).second) out.push_back(t);
    }
  }
  return out;
}

}  // namespace

std::vector<torch::Tensor> Chain::parameters() const { return each_once(stages_, &torch::nn::Module::parameters); }

std::vector<torch::Tensor> Chain::buffers() const { return each_once(stages_, &torch::nn::Module::buffers); }

std::string Chain::digest() const {
  std::string shape = name_;
  for (const auto& s : stages_) shape += ";" + s.name + ":" + signature(s);
  return fnv1a_hex(shape);
}

void Chain::use(const Plan& plan, const std::string& source, const CheckpointOptions& options) {
  if (stages_.empty()) throw ChainError(fmt::format("Chain {} has no stages; add them before using a plan", name_));
  if (plan.model != name_) {
    throw PlanMismatch(fmt::format("{}: the plan was made for model \"{}\", this chain is \"{}\"; profile "
                                "this chain (Session::profile) and plan again",
                                source, plan.model, name_));
  }
  if (plan.digest.empty()) {
    throw PlanMismatch(fmt::format("{}: the plan has no digest, so nothing shows it was made for this chain; make "
                                "it with tidemark::plan(profile, budget) from this chain's profile",
                                source));
  }
  check_plan_matches(plan, *this, source);
  executor_ = std::make_unique<PlanExecutor>(*this, plan.root, options);
  plan_ = plan;
  mode_ = "plan";
}

void Chain::checkpoint_every_block(const CheckpointOptions& options) {
  options.validate();
  executor_ = std::make_unique<PlanExecutor>(*this, plan_uniform(*this), options);
  plan_.reset();
  mode_ = "uniform";
}

void Chain::no_checkpointing() {
  executor_.reset();
  plan_.reset();
  mode_ = "none";
}

PlanNode Chain::current_plan() const {
  return executor_ ? executor_->root() : plan_no_checkpoint(num_stages());
}

Activations Chain::forward(const Activations& inputs, const StageContext& ctx) {
  if (stages_.empty()) throw ChainError(fmt::format("Chain {} has no stages", name_));
  // Always through the executor, so that a traced run without a plan still records its
  // stage spans.
  if (!executor_) executor_ = std::make_unique<PlanExecutor>(*this, plan_no_checkpoint(num_stages()));
  return executor_->forward(inputs, ctx);
}

torch::Tensor Chain::forward(const Batch& batch) {
  if (on_batch_) on_batch_(batch);
  Activations out = forward(batch.inputs, batch.context());
  if (out.size() != 1) {
    throw ChainError(fmt::format("Chain {}: forward(batch) returns the last stage's one tensor, the loss, "
                                "but stage {} returned {}; end the chain with add_loss, or call "
                                "forward(inputs, context)",
                                name_, stages_.back().name, out.size()));
  }
  return out[0];
}

}  // namespace tidemark::runtime
