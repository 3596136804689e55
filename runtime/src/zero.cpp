#include "tidemark/runtime/zero.hpp"

#include <c10/core/StorageImpl.h>
#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "c10d_backends.hpp"
#include "grad_ready_hook.hpp"
#include "tidemark/core/bytes.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/profiler/stage_observer.hpp"
#include "tidemark/runtime/distributed.hpp"
#include "tidemark/runtime/executor.hpp"

namespace tidemark::runtime {

// Note [ZeRO] in the header.
struct ZeroSharding::Impl : ParameterGather {
  struct Unit {
    int stage = 0;
    std::vector<torch::Tensor> params;
    std::vector<std::int64_t> offset;  // of each parameter in the flat layout
    std::int64_t padded = 0, chunk = 0;
    // ZeRO-1/2: the whole parameters (the parameters are views of it). ZeRO-3: the same,
    // but its storage holds memory only while gathered.
    torch::Tensor flat;
    torch::Tensor shard;       // what the optimizer steps: a view of flat (1/2), its own (3)
    torch::Tensor grad_full;   // ZeRO-1: static; 2/3: from the first gradient to the reduction
    torch::Tensor grad_shard;  // 2/3: static; 1: a view of grad_full after the reduction
    std::vector<char> arrived;
    std::size_t pending = 0;
    bool launched = false;
    bool gathered = true;
    bool gathered_for_backward = false;
    c10::intrusive_ptr<c10d::Work> work;
  };

  std::weak_ptr<Impl> self;
  DataParallel* dp = nullptr;
  Comm* comm = nullptr;
  int zero = 0, rank = 0, world = 1;
  std::chrono::milliseconds timeout{60000};
  std::vector<Unit> units;
  std::vector<int> unit_of_stage;  // -1: a stage without parameters
  std::vector<torch::Tensor> shards;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::mutex mu;
  std::vector<std::size_t> order;  // units in the order their reductions are launched
  std::size_t next_launch = 0;
  Unit* in_flight = nullptr;
  std::string failure;
  double waited_ms = 0;     // blocked in collectives since the last finish_backward
  double comm_wait_ms = 0;

  bool nccl() const { return comm->stream_ordered; }

  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      // 0 ms is c10d's "no timeout": NCCL's wait only orders streams.
      work->wait(nccl() ? std::chrono::milliseconds(0) : timeout);
    } catch (const std::exception& e) {
      throw RunFailure(fmt::format("rank {}: a ZeRO {} failed (another rank stopped, or the network failed): {}",
                                   rank, what, e.what()));
    }
    waited_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }

  c10::intrusive_ptr<c10d::Work> all_reduce(torch::Tensor t) {
    std::vector<at::Tensor> ts{std::move(t)};
    return comm->pg->allreduce(ts);
  }

  // Every rank's part of u.flat from its shard `mine` (a view of flat at 1/2).
  void all_gather(Unit& u, const torch::Tensor& mine) {
    torch::NoGradGuard no_grad;
    if (nccl()) {
      at::Tensor out = u.flat;
      at::Tensor in = mine;
      wait(comm->pg->_allgather_base(out, in), "parameter gather");
      return;
    }
    // Zeros everywhere but this rank's part, then a sum: exact, and nothing allocated.
    const std::int64_t begin = rank * u.chunk;
    if (mine.data_ptr() != u.flat.narrow(0, begin, u.chunk).data_ptr()) u.flat.narrow(0, begin, u.chunk).copy_(mine);
    if (begin > 0) u.flat.narrow(0, 0, begin).zero_();
    if (begin + u.chunk < u.padded) u.flat.narrow(0, begin + u.chunk, u.padded - begin - u.chunk).zero_();
    wait(all_reduce(u.flat), "parameter gather");
  }

  // ---- ZeRO-3: full parameters only while a stage runs

  // Frees t's memory now, whoever else still refers to t: Gloo's worker thread drops its
  // reference to a collective's tensors only some time after the collective completes, and
  // memory freed "some time later" is memory no plan can count on.
  static void free_storage(const torch::Tensor& t) {
    c10::StorageImpl* s = t.storage().unsafeGetStorageImpl();
    s->set_data_ptr_noswap(at::DataPtr(nullptr, t.device()));
    s->set_nbytes(0);
  }

  void gather(Unit& u) {
    if (u.gathered) return;
    c10::StorageImpl* s = u.flat.storage().unsafeGetStorageImpl();
    const std::size_t bytes = static_cast<std::size_t>(u.padded) * u.flat.element_size();
    s->set_data_ptr_noswap(s->allocator()->allocate(bytes));
    s->set_nbytes(bytes);
    u.gathered = true;
    all_gather(u, u.shard);
  }

  void release(Unit& u) {
    if (!u.gathered || zero < 3) return;
    free_storage(u.flat);
    u.gathered = false;
    u.gathered_for_backward = false;
  }

  void before_forward(int k) override {
    const int u = unit_of_stage[static_cast<std::size_t>(k)];
    if (u >= 0) gather(units[static_cast<std::size_t>(u)]);
  }

  Activations after_forward(int k, Activations outputs) override;

  // The stage's backward begins: its parameters come back, and those of the stage whose
  // backward just ended go (its nodes have all run: they precede this one's in the graph).
  void before_backward(int k) {
    const int ui = unit_of_stage[static_cast<std::size_t>(k)];
    for (Unit& u : units) {
      if (u.gathered_for_backward && u.stage > k) release(u);
    }
    if (ui < 0) return;
    Unit& u = units[static_cast<std::size_t>(ui)];
    gather(u);
    u.gathered_for_backward = true;
  }

  // ---- gradients

  void on_grad_ready(std::size_t ui, std::size_t pi) {
    std::lock_guard<std::mutex> lock(mu);
    Unit& u = units[ui];
    torch::Tensor& g = u.params[pi].mutable_grad();
    if (!g.defined()) return;
    torch::NoGradGuard no_grad;
    if (u.arrived[pi]) {
      // A second gradient in one backward (used inside a checkpointed range and outside it).
      if (u.launched) {
        if (failure.empty()) {
          failure = fmt::format("rank {}: a parameter of stage {} received a second gradient after its stage was "
                                "reduced (it is used inside a checkpointed range and outside it); checkpoint both "
                                "uses together, or none",
                                rank, u.stage);
        }
      } else {
        u.grad_full.narrow(0, u.offset[pi], g.numel()).add_(g.reshape(-1));
      }
      g.reset();
      return;
    }
    if (!u.grad_full.defined()) {
      u.grad_full = torch::empty({u.padded}, u.shard.options());
      const std::int64_t used = u.offset.back() + u.params.back().numel();
      if (used < u.padded) u.grad_full.narrow(0, used, u.padded - used).zero_();
    }
    u.grad_full.narrow(0, u.offset[pi], g.numel()).copy_(g.reshape(-1));
    g.reset();  // the stage's buffer has it now
    u.arrived[pi] = 1;
    if (--u.pending == 0) {
      release(u);  // ZeRO-3: every node that used the parameters has run
      launch_ready();
    }
  }

  // Launches complete units in the fixed order (every rank must issue the same collectives
  // in the same order); the one before is waited for first, so one reduction is in flight.
  void launch_ready() {
    while (next_launch < order.size() && units[order[next_launch]].pending == 0) {
      Unit& u = units[order[next_launch++]];
      if (in_flight) complete(*in_flight);
      if (nccl() && zero >= 2) {
        at::Tensor out = u.grad_shard, in = u.grad_full;
        u.work = comm->pg->_reduce_scatter_base(out, in);
      } else {
        u.work = all_reduce(u.grad_full);
      }
      u.launched = true;
      in_flight = &u;
    }
  }

  // Waits for u's reduction; keeps this rank's shard of it and frees the rest (ZeRO-2/3).
  void complete(Unit& u) {
    wait(u.work, "gradient reduction");
    u.work.reset();
    torch::NoGradGuard no_grad;
    if (zero == 1) {
      u.grad_shard = u.grad_full.narrow(0, rank * u.chunk, u.chunk);
    } else {
      if (!nccl()) u.grad_shard.copy_(u.grad_full.narrow(0, rank * u.chunk, u.chunk));
      free_storage(u.grad_full);
      u.grad_full = torch::Tensor();
    }
    if (in_flight == &u) in_flight = nullptr;
  }

  void reset_round() {
    for (Unit& u : units) {
      std::fill(u.arrived.begin(), u.arrived.end(), 0);
      u.pending = u.params.size();
      u.launched = false;
    }
    next_launch = 0;
    in_flight = nullptr;
  }
};


Activations ZeroSharding::Impl::after_forward(int k, Activations outputs) {
  const int ui = unit_of_stage[static_cast<std::size_t>(k)];
  if (ui < 0) return outputs;
  release(units[static_cast<std::size_t>(ui)]);
  // The node holds this sharding weakly: a graph may outlive it.
  std::weak_ptr<Impl> weak = self;
  return profiler::call_on_backward(outputs, [weak, k](const torch::Tensor&) {
    if (auto z = weak.lock()) z->before_backward(k);
  });
}

ZeroSharding::ZeroSharding(DataParallel& dp, ChainModule& chain, int stage) : impl_(std::make_shared<Impl>()) {
  if (stage < 1 || stage > 3) {
    throw UserError(fmt::format("--zero {}: a ZeRO stage is 1 (optimizer state), 2 (and gradients) or 3 (and "
                                "parameters); 0 is plain data parallel",
                                stage));
  }
  if (parameter_gather()) throw UserError("a ZeRO sharding already exists in this process; make one per rank");
  Impl& s = *impl_;
  s.self = impl_;
  s.dp = &dp;
  s.comm = &dp.comm();
  s.zero = stage;
  s.rank = dp.rank();
  s.world = dp.world_size();
  s.timeout = dp.env().timeout;
  const int n = chain.num_stages();
  s.unit_of_stage.assign(static_cast<std::size_t>(n), -1);
  std::unordered_map<const void*, int> owner;
  torch::NoGradGuard no_grad;
  for (int k = 0; k < n; ++k) {
    Impl::Unit u;
    u.stage = k;
    std::int64_t numel = 0;
    for (const auto& p : chain.stage_parameters(k)) {
      if (!p.requires_grad()) continue;
      auto [it, fresh] = owner.emplace(p.unsafeGetTensorImpl(), k);
      if (!fresh) {
        if (it->second == k) continue;  // listed twice by one stage
        throw UserError(fmt::format("ZeRO shards each stage's parameters, but a parameter {} belongs to stages {} "
                                    "and {} ({} and {}); tie parameters within one stage, or train without --zero",
                                    c10::str(p.sizes()), it->second, k, chain.stage_name(it->second), chain.stage_name(k)));
      }
      u.params.push_back(p);
      u.offset.push_back(numel);
      numel += p.numel();
    }
    if (u.params.empty()) continue;
    u.chunk = (numel + s.world - 1) / s.world;
    u.padded = u.chunk * s.world;
    u.flat = torch::zeros({u.padded}, u.params.front().options().requires_grad(false));
    for (std::size_t i = 0; i < u.params.size(); ++i) {
      torch::Tensor& p = u.params[i];
      torch::Tensor view = u.flat.narrow(0, u.offset[i], p.numel()).view_as(p);
      view.copy_(p);
      p.set_data(view);
    }
    const torch::Tensor mine = u.flat.narrow(0, s.rank * u.chunk, u.chunk);
    // A leaf of its own for the optimizer: at 1/2 it shares the flat storage, so stepping it
    // updates this rank's part of the parameters in place.
    u.shard = stage == 3 ? mine.clone() : mine.detach();
    u.shard.requires_grad_(true);
    if (stage == 1) {
      u.grad_full = torch::zeros({u.padded}, u.shard.options().requires_grad(false));
    } else {
      u.grad_shard = torch::zeros({u.chunk}, u.shard.options().requires_grad(false));
    }
    u.arrived.assign(u.params.size(), 0);
    u.pending = u.params.size();
    s.unit_of_stage[static_cast<std::size_t>(k)] = static_cast<int>(s.units.size());
    s.units.push_back(std::move(u));
  }
  if (s.units.empty()) throw UserError("ZeRO: the chain has no parameters that require grad");
  // Backward reaches the stages last to first.
  for (std::size_t i = s.units.size(); i-- > 0;) s.order.push_back(i);
  for (auto& u : s.units) s.shards.push_back(u.shard);
  std::weak_ptr<Impl> weak = impl_;
  for (std::size_t ui = 0; ui < s.units.size(); ++ui) {
    for (std::size_t pi = 0; pi < s.units[ui].params.size(); ++pi) {
      s.accumulators.push_back(GradReadyHook::attach(s.units[ui].params[pi], [weak, ui, pi] {
        if (auto impl = weak.lock()) impl->on_grad_ready(ui, pi);
      }));
    }
  }
  if (stage == 3) {
    for (auto& u : s.units) s.release(u);
    set_parameter_gather(impl_.get());
  }
}

ZeroSharding::~ZeroSharding() {
  if (parameter_gather() == impl_.get()) set_parameter_gather(nullptr);
}

int ZeroSharding::stage() const { return impl_->zero; }
int ZeroSharding::rank() const { return impl_->rank; }
int ZeroSharding::world_size() const { return impl_->world; }
const std::vector<torch::Tensor>& ZeroSharding::shards() const { return impl_->shards; }

void ZeroSharding::finish_backward() {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.failure.empty()) {
      s.reset_round();
      throw RunFailure(std::exchange(s.failure, {}));
    }
    for (Impl::Unit& u : s.units) {
      if (u.pending == 0) continue;
      s.reset_round();
      throw RunFailure(fmt::format("rank {}: a parameter of stage {} received no gradient in backward; ZeRO "
                                   "training needs every parameter to take part in the loss",
                                   s.rank, u.stage));
    }
    if (s.in_flight) s.complete(*s.in_flight);
    for (Impl::Unit& u : s.units) s.release(u);  // ZeRO-3: the first stage's, still gathered
  }
  s.comm_wait_ms = std::exchange(s.waited_ms, 0.0);
  torch::NoGradGuard no_grad;
  const double inv = 1.0 / s.world;
  for (Impl::Unit& u : s.units) {
    u.grad_shard.mul_(inv);
    u.shard.mutable_grad() = u.grad_shard;
  }
  s.reset_round();
}

double ZeroSharding::last_comm_wait_ms() const { return impl_->comm_wait_ms; }

double ZeroSharding::clip_grad_norm(double max_norm) {
  Impl& s = *impl_;
  torch::NoGradGuard no_grad;
  torch::Tensor sq = torch::zeros({1}, torch::TensorOptions(torch::kDouble).device(s.units.front().shard.device()));
  for (const auto& u : s.units) sq += u.grad_shard.to(torch::kDouble).pow(2).sum();
  s.wait(s.all_reduce(sq), "gradient norm");
  const double norm = std::sqrt(sq.item<double>());
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1) {
    for (auto& u : s.units) u.grad_shard.mul_(coef);
  }
  return norm;
}

void ZeroSharding::after_step() {
  Impl& s = *impl_;
  if (s.zero == 3) return;
  for (auto& u : s.units) s.all_gather(u, u.shard);
}

void ZeroSharding::gather(int k) { impl_->before_forward(k); }

void ZeroSharding::release(int k) {
  const int ui = impl_->unit_of_stage.at(static_cast<std::size_t>(k));
  if (ui >= 0) impl_->release(impl_->units[static_cast<std::size_t>(ui)]);
}

std::string ZeroSharding::layout() const {
  return fmt::format("ZeRO-{}, rank {} of {}", impl_->zero, impl_->rank, impl_->world);
}

void ZeroSharding::load_shards(const std::vector<torch::Tensor>& saved) {
  Impl& s = *impl_;
  if (saved.size() != s.units.size()) {
    throw UserError(fmt::format("the saved state has {} parameter shards, this model {}", saved.size(),
                                s.units.size()));
  }
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < saved.size(); ++i) {
    if (saved[i].sizes() != s.units[i].shard.sizes()) {
      throw UserError(fmt::format("the saved shard of stage {} has {} elements, this model's {}", s.units[i].stage,
                                  saved[i].numel(), s.units[i].shard.numel()));
    }
    s.units[i].shard.copy_(saved[i]);
  }
  after_step();
}

std::uint64_t ZeroSharding::reduce_buffer_bytes() const {
  if (impl_->zero < 2) return 0;
  std::uint64_t most = 0;
  for (const auto& u : impl_->units) {
    most = std::max<std::uint64_t>(most, static_cast<std::uint64_t>(u.padded) * u.shard.element_size());
  }
  return most;
}

std::string ZeroSharding::describe() const {
  std::uint64_t whole = 0, mine = 0;
  for (const auto& u : impl_->units) {
    whole += static_cast<std::uint64_t>(u.padded) * u.shard.element_size();
    mine += static_cast<std::uint64_t>(u.chunk) * u.shard.element_size();
  }
  return fmt::format("ZeRO-{} over {} ranks: {} stages, {} of {} parameters per rank{}", impl_->zero, impl_->world,
                     impl_->units.size(), format_bytes(mine), format_bytes(whole),
                     impl_->nccl() ? "" : " (Gloo: reductions and gathers by all-reduce)");
}

}  // namespace tidemark::runtime
