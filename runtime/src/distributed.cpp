#include "tidemark/runtime/distributed.hpp"

#include <algorithm>
#include <cstdlib>
#include <fmt/format.h>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "c10d_backends.hpp"
#include "grad_ready_hook.hpp"
#include "tidemark/core/error.hpp"

namespace tidemark::runtime {
namespace {

int env_int(const char* name, int lo, int hi, std::optional<int> fallback = std::nullopt) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    if (fallback) return *fallback;
    throw UserError(fmt::format("{} is not set; a data-parallel rank needs RANK, WORLD_SIZE, MASTER_ADDR and "
                                "MASTER_PORT (as torchrun sets them), or use train --nproc N",
                                name));
  }
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi) {
    throw UserError(fmt::format("{}='{}' is not an integer in [{}, {}]", name, v, lo, hi));
  }
  return static_cast<int>(x);
}

std::vector<std::uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
std::string string_of(const std::vector<std::uint8_t>& b) { return {b.begin(), b.end()}; }

}  // namespace

std::vector<std::vector<std::size_t>> bucket_assignment(const std::vector<torch::Tensor>& params,
                                                        std::int64_t bucket_bytes) {
  std::vector<std::vector<std::size_t>> out;
  std::int64_t filled = 0;
  for (std::size_t k = params.size(); k-- > 0;) {
    const std::int64_t bytes = params[k].numel() * static_cast<std::int64_t>(params[k].element_size());
    if (out.empty() || (filled > 0 && filled + bytes > bucket_bytes)) {
      out.emplace_back();
      filled = 0;
    }
    out.back().push_back(k);
    filled += bytes;
  }
  return out;
}

std::vector<torch::Tensor> gradient_buckets(const std::vector<torch::Tensor>& params, std::int64_t bucket_bytes) {
  std::vector<torch::Tensor> out;
  for (const auto& bucket : bucket_assignment(params, bucket_bytes)) {
    std::int64_t numel = 0;
    for (std::size_t k : bucket) numel += params[k].numel();
    out.push_back(torch::zeros({numel}, params[bucket.front()].options().requires_grad(false)));
  }
  return out;
}

std::optional<DistEnv> dist_env_from_environment() {
  if (!std::getenv("WORLD_SIZE")) return std::nullopt;
  DistEnv e;
  e.world_size = env_int("WORLD_SIZE", 1, 65536);
  e.rank = env_int("RANK", 0, e.world_size - 1);
  e.local_rank = env_int("LOCAL_RANK", 0, e.world_size - 1, e.rank);
  const char* addr = std::getenv("MASTER_ADDR");
  if (!addr || !*addr) throw UserError("MASTER_ADDR is not set; set it to rank 0's host (as torchrun does)");
  e.master_addr = addr;
  e.master_port = env_int("MASTER_PORT", 1, 65535);
  e.timeout = std::chrono::seconds(env_int("TIDEMARK_DIST_TIMEOUT_S", 1, 86400, 60));
  return e;
}

// Note [data parallel] in the header.
struct DataParallel::Impl {
  struct Bucket {
    torch::Tensor flat;           // the bucket's gradients, contiguous: what is all-reduced
    std::vector<std::size_t> params;  // indices into Impl::params
    std::size_t pending = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };
  DistEnv env;
  c10::intrusive_ptr<c10d::Store> store;
  Comm comm;
  std::vector<torch::Tensor> params;
  std::vector<std::size_t> bucket_of, offset_of;
  std::vector<char> ready;  // per parameter, this backward
  std::vector<Bucket> buckets;
  // Keeps each parameter's AccumulateGrad node (and our hook on it) alive across steps.
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::mutex mu;
  std::size_t next_launch = 0;
  std::string failure;

  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
      Bucket& b = buckets[next_launch++];
      std::vector<at::Tensor> tensors{b.flat};
      b.work = comm.pg->allreduce(tensors);
    }
  }

  // Copies parameter i's gradient into its bucket; the caller holds mu.
  void copy_in(std::size_t i) {
    const torch::Tensor& g = params[i].grad();
    torch::NoGradGuard no_grad;
    buckets[bucket_of[i]].flat.narrow(0, static_cast<std::int64_t>(offset_of[i]), g.numel()).copy_(g.reshape(-1));
  }
  void take(std::size_t i) {
    copy_in(i);
    ready[i] = 1;
    --buckets[bucket_of[i]].pending;
  }

  ~Impl() {
    if (comm.shutdown) comm.shutdown();
  }

  void on_grad_ready(std::size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    if (!params[i].grad().defined()) return;
    if (ready[i]) {
      // A second gradient in one backward: the parameter is used both inside a checkpointed
      // range and outside it (Note [gradients inside a recompute]); .grad holds the sum.
      if (bucket_of[i] >= next_launch) {
        copy_in(i);
      } else if (failure.empty()) {
        failure = fmt::format("rank {}: parameter #{} received a second gradient after its bucket was all-reduced "
                              "(it is used inside a checkpointed range and outside it); checkpoint both uses "
                              "together, or none",
                              env.rank, i);
      }
      return;
    }
    if (buckets[bucket_of[i]].pending == 0) return;  // outside a data-parallel step
    take(i);
    if (buckets[bucket_of[i]].pending == 0) launch_ready();
  }
};

namespace {

// Note [TCPStore without libuv]: since LibTorch 2.4 TCPStoreOptions::useLibUV defaults to
// true, and a LibTorch built without libuv (Debian's) refuses the store at once ("use_libuv
// was requested but PyTorch was build without libuv support"). The two servers speak the
// same protocol, so libuv is only a faster server: keep it where the build has it and fall
// back to the classic one where it is refused. The refusal comes before any socket is
// opened, so the retry binds the same port.
c10::intrusive_ptr<c10d::TCPStore> make_store(const std::string& host, c10d::TCPStoreOptions so) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  if (so.useLibUV) {
    try {
      return c10::make_intrusive<c10d::TCPStore>(host, so);
    } catch (const std::exception& e) {
      if (std::string_view(e.what()).find("libuv") == std::string_view::npos) throw;
      so.useLibUV = false;
    }
  }
#endif
  return c10::make_intrusive<c10d::TCPStore>(host, so);
}

}  // namespace

DataParallel::DataParallel(const DistEnv& env, const std::string& device)
    : env_(env), shared_(std::make_shared<Impl>()) {
  Impl& s = *shared_;
  s.env = env;
  prepare_rank_device(env, device == "cuda");
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<std::size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = env.timeout;
    s.store = make_store(env.master_addr, so);
  } catch (const std::exception& e) {
    throw UserError(fmt::format("rank {} of {} could not join the job at {}:{} within {} s: {}", env.rank,
                                env.world_size, env.master_addr, env.master_port,
                                std::chrono::duration_cast<std::chrono::seconds>(env.timeout).count(), e.what()));
  }
  try {
    s.comm = make_comm(s.store, env, device == "cuda");
  } catch (const std::exception& e) {
    throw UserError(fmt::format("rank {} of {} could not start its c10d process group: {}", env.rank,
                                env.world_size, e.what()));
  }
}

DataParallel::~DataParallel() = default;

void DataParallel::check_same_run(const std::string& what, const std::string& identity) {
  Impl& s = *shared_;
  const std::string key = "tidemark/" + what + "/";
  s.store->set(key + std::to_string(env_.rank), bytes_of(identity));
  std::string verdict;
  if (env_.rank == 0) {
    for (int r = 1; r < env_.world_size; ++r) {
      const std::string theirs = string_of(s.store->get(key + std::to_string(r)));
      if (theirs != identity && verdict.empty()) {
        verdict = fmt::format("rank {} runs a different {} than rank 0 ('{}' against '{}'); start every rank "
                              "with the same flags and files",
                              r, what, theirs, identity);
      }
    }
    s.store->set(key + "verdict", bytes_of(verdict.empty() ? "ok" : verdict));
  } else {
    verdict = string_of(s.store->get(key + "verdict"));
    if (verdict == "ok") verdict.clear();
  }
  if (!verdict.empty()) throw UserError(verdict);
}

void DataParallel::attach(const std::vector<torch::Tensor>& params, std::int64_t bucket_bytes) {
  Impl& s = *shared_;
  s.params = params;
  s.bucket_of.assign(params.size(), 0);
  s.offset_of.assign(params.size(), 0);
  s.buckets.clear();
  const auto assignment = bucket_assignment(params, bucket_bytes);
  const auto buffers = gradient_buckets(params, bucket_bytes);
  for (std::size_t i = 0; i < assignment.size(); ++i) {
    Impl::Bucket b;
    b.params = assignment[i];
    b.flat = buffers[i];
    std::size_t offset = 0;
    for (std::size_t k : b.params) {
      s.bucket_of[k] = i;
      s.offset_of[k] = offset;
      offset += static_cast<std::size_t>(params[k].numel());
    }
    s.buckets.push_back(std::move(b));
  }
  s.ready.assign(params.size(), 0);
  std::weak_ptr<Impl> weak = shared_;
  for (std::size_t k = 0; k < params.size(); ++k) {
    s.accumulators.push_back(GradReadyHook::attach(params[k], [weak, k] {
      if (auto impl = weak.lock()) impl->on_grad_ready(k);
    }));
  }
}

const std::string& DataParallel::backend() const { return shared_->comm.name; }

Comm& DataParallel::comm() { return shared_->comm; }

std::size_t DataParallel::bucket_count() const { return shared_->buckets.size(); }

std::int64_t DataParallel::bucket_bytes() const {
  std::int64_t n = 0;
  for (const auto& b : shared_->buckets) n += b.flat.numel() * b.flat.element_size();
  return n;
}

void DataParallel::before_backward() {
  Impl& s = *shared_;
  std::lock_guard<std::mutex> lock(s.mu);
  for (auto& b : s.buckets) {
    b.pending = b.params.size();
    b.work.reset();
  }
  std::fill(s.ready.begin(), s.ready.end(), 0);
  s.next_launch = 0;
}

void DataParallel::finish_backward() {
  Impl& s = *shared_;
  s.comm.timer->backward_done();
  if (!s.failure.empty()) throw RunFailure(std::exchange(s.failure, {}));
  {
    // A gradient whose hook did not run (its AccumulateGrad was replaced) is taken now; one
    // that does not exist is an error, as in PyTorch's DDP.
    std::lock_guard<std::mutex> lock(s.mu);
    for (const Impl::Bucket& b : s.buckets) {
      if (b.pending == 0) continue;
      for (std::size_t k : b.params) {
        if (s.ready[k]) continue;
        if (!s.params[k].grad().defined()) {
          throw RunFailure(fmt::format(
              "rank {}: parameter #{} received no gradient in backward; data-parallel training needs "
              "every parameter to take part in the loss",
              env_.rank, k));
        }
        s.take(k);
      }
    }
    s.launch_ready();
  }
  for (auto& b : s.buckets) {
    try {
      // 0 ms is c10d's "no timeout" (kNoTimeout, whose namespace differs across versions).
      b.work->wait(s.comm.stream_ordered ? std::chrono::milliseconds(0) : env_.timeout);
    } catch (const std::exception& e) {
      throw RunFailure(fmt::format("rank {}: a gradient all-reduce failed (another rank stopped, or the "
                                   "network failed): {}",
                                   env_.rank, e.what()));
    }
  }
  s.comm.timer->comm_done();
  torch::NoGradGuard no_grad;
  const double inv = 1.0 / env_.world_size;
  for (auto& b : s.buckets) {
    b.flat.mul_(inv);
    for (std::size_t k : b.params) {
      torch::Tensor g = s.params[k].mutable_grad();
      g.copy_(b.flat.narrow(0, static_cast<std::int64_t>(s.offset_of[k]), g.numel()).view_as(g));
    }
  }
}

double DataParallel::last_comm_wait_ms() { return shared_->comm.timer->exposed_ms(); }

double DataParallel::average(double value) {
  std::vector<at::Tensor> t{torch::tensor({value}, torch::TensorOptions(torch::kDouble).device(shared_->comm.device))};
  shared_->comm.pg->allreduce(t)->wait(env_.timeout);
  return t[0].item<double>() / env_.world_size;
}

std::vector<std::int64_t> DataParallel::gather(std::int64_t value) {
  torch::Tensor mine = torch::zeros({env_.world_size}, torch::kLong);
  mine[env_.rank] = value;
  std::vector<at::Tensor> t{mine.to(shared_->comm.device)};
  shared_->comm.pg->allreduce(t)->wait(env_.timeout);
  const torch::Tensor all = t[0].cpu();
  std::vector<std::int64_t> out(static_cast<std::size_t>(env_.world_size));
  for (int r = 0; r < env_.world_size; ++r) out[static_cast<std::size_t>(r)] = all[r].item<std::int64_t>();
  return out;
}

}  // namespace tidemark::runtime
