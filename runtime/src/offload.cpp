// Offload to host memory (Note [offload runtime], runtime/offload.hpp).
//
// Sections: the link (streams, host buffers); StorageTrip and ViewOf; OffloadSet; the
// engine with saved-tensor hooks; the public functions.
#include "tidemark/runtime/offload.hpp"

#include "offload_set.hpp"

#include <algorithm>
#include <atomic>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <chrono>
#include <cstdlib>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <thread>
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/saved_variable_hooks.h>

#include "tidemark/core/bytes.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/profiler/allocator_hook.hpp"
#include "tidemark/profiler/stage_observer.hpp"

namespace tidemark::runtime {
namespace detail {

// ---------------------------------------------------------------- the link

namespace {

std::atomic<bool> g_emulated{false};

// One side stream per direction and device, so copies out and in overlap each other and
// compute (Note [offload] in planner/simulator.hpp).
struct SideStreams {
  c10::Stream out;
  c10::Stream in;
};

SideStreams& side_streams(const c10::Device& device) {
  static std::mutex mutex;
  static std::map<c10::DeviceIndex, SideStreams> streams;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = streams.find(device.index());
  if (it == streams.end()) {
    c10::impl::VirtualGuardImpl impl(device.type());
    it = streams.emplace(device.index(), SideStreams{impl.getStreamFromGlobalPool(device), impl.getStreamFromGlobalPool(device)})
             .first;
  }
  return it->second;
}

c10::Stream current_stream(const c10::Device& device) {
  return c10::impl::VirtualGuardImpl(device.type()).getStream(device);
}

// `later` runs after the work queued on `first` so far.
void order(const c10::Stream& first, const c10::Stream& later) {
  c10::Event ready(first.device_type());
  ready.record(first);
  ready.block(later);
}

// dst <- src (bytes). On the CPU at once; on CUDA on `side`, after the work queued on the
// compute stream so far, with `done` recorded after it. Returns whether it is complete.
bool copy_bytes(at::Tensor& dst, const at::Tensor& src, const c10::Device& device, const c10::Stream* side,
                std::optional<c10::Event>& done) {
  if (!device.is_cuda()) {
    dst.copy_(src);
    return true;
  }
  order(current_stream(device), *side);
  {
    c10::StreamGuard guard(*side);
    dst.copy_(src, /*non_blocking=*/true);
  }
  done.emplace(device.type());
  done->record(*side);
  return false;
}

void wait(const c10::Event& done) {
  while (!done.query()) std::this_thread::yield();
}

// Host bytes: pinned on CUDA (asynchronous copies need them); on the emulated CPU link,
// memory from malloc, which the allocator hook does not see, so it never counts as device.
at::Tensor host_bytes(std::int64_t n, const c10::Device& device) {
  if (device.is_cuda()) return at::empty({n}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
  void* p = std::malloc(static_cast<std::size_t>(std::max<std::int64_t>(n, 1)));
  if (!p) throw RunFailure(fmt::format("offload: no host memory for {} bytes", n));
  return at::from_blob(p, {n}, [](void* q) { std::free(q); }, at::TensorOptions().dtype(at::kByte));
}

at::Tensor storage_bytes(const at::Tensor& t) {
  const auto n = static_cast<std::int64_t>(t.storage().nbytes());
  return at::empty({0}, t.options().dtype(at::kByte)).set_(t.storage(), 0, {n}, {1});
}

}  // namespace

bool host_link_emulated() { return g_emulated.load(); }

namespace {
thread_local int t_copy_stage = -1;
}

CopyStage::CopyStage(int stage) : previous_(t_copy_stage) { t_copy_stage = stage; }
CopyStage::~CopyStage() { t_copy_stage = previous_; }
int CopyStage::current() { return t_copy_stage; }

// ---------------------------------------------------------------- StorageTrip and ViewOf

StorageTrip::StorageTrip(const at::Tensor& t, int stage)
    : device_(t.device()), stage_(stage), nbytes_(t.storage().nbytes()), key_(t.storage().unsafeGetStorageImpl()) {
  source_ = storage_bytes(t);
  host_ = host_bytes(static_cast<std::int64_t>(nbytes_), device_);
  out_t0_ = profiler::now_ns();
  const c10::Stream* side = device_.is_cuda() ? &side_streams(device_).out : nullptr;
  if (copy_bytes(host_, source_, device_, side, out_done_)) out_t1_ = profiler::now_ns();
}

StorageTrip::~StorageTrip() {
  // A copy still running reads the device bytes or writes the pinned ones: let it finish.
  if (out_done_ && source_.defined()) wait(*out_done_);
  if (in_done_ && in_.defined()) wait(*in_done_);
  if (kept_) profiler::ledger().on_host_event(-static_cast<std::int64_t>(nbytes_));
}

void StorageTrip::traced(bool to_host, std::int64_t t0_ns, std::int64_t t1_ns) const {
  if (stage_ < 0) return;
  if (profiler::StageObserver* obs = profiler::active_observer()) obs->copy(stage_, to_host, t0_ns, t1_ns);
}

void StorageTrip::wait_out() {
  if (!source_.defined()) return;
  if (out_done_) {
    wait(*out_done_);
    out_t1_ = profiler::now_ns();
  }
  source_ = at::Tensor();
}

void StorageTrip::keep_on_host() {
  if (kept_) return;
  kept_ = true;
  profiler::ledger().on_host_event(static_cast<std::int64_t>(nbytes_));
  traced(true, out_t0_, out_t1_);
}

void StorageTrip::start_in() {
  if (in_.defined()) return;
  // Allocated on the compute stream, which may still be using the block it gets.
  in_ = at::empty({static_cast<std::int64_t>(nbytes_)}, at::TensorOptions().dtype(at::kByte).device(device_));
  in_t0_ = profiler::now_ns();
  in_t1_ = 0;
  const c10::Stream* side = device_.is_cuda() ? &side_streams(device_).in : nullptr;
  if (copy_bytes(in_, host_, device_, side, in_done_)) in_t1_ = profiler::now_ns();
}

at::Tensor StorageTrip::take_in() {
  start_in();
  if (in_done_) {
    in_done_->block(current_stream(device_));
    in_done_.reset();
    in_t1_ = profiler::now_ns();  // from here compute waits on the GPU, not here
  }
  traced(false, in_t0_, in_t1_);
  at::Tensor out = std::move(in_);
  in_ = at::Tensor();
  return out;
}

ViewOf::ViewOf(const at::Tensor& t)
    : dtype(t.scalar_type()), sizes(t.sizes().vec()), strides(t.strides().vec()), offset(t.storage_offset()) {}

at::Tensor ViewOf::on(const at::Tensor& storage_bytes) const {
  return at::empty({0}, storage_bytes.options().dtype(dtype)).set_(storage_bytes.storage(), offset, sizes, strides);
}

// ---------------------------------------------------------------- OffloadSet

std::size_t OffloadSet::pack(const at::Tensor& t) {
  std::lock_guard<std::mutex> lock(mutex_);
  Saved s;
  s.device = t;
  // Parameters (and views of them: a linear layer saves weight.t()) stay where they are;
  // anything else starts its copy now, so that it runs while the stage's forward goes on.
  // offload() decides which copies are used.
  auto parameter = [](const at::TensorBase& x) { return x.is_leaf() && x.requires_grad(); };
  if (t.defined() && t.has_storage() && !parameter(t) && !(t.is_view() && parameter(t._base())) &&
      t.storage().nbytes() > 0) {
    // An alias of our own: a view would hold its base, and so the storage, beyond the forward.
    s.device = t.detach();
    const void* key = t.storage().unsafeGetStorageImpl();
    int found = -1;
    for (std::size_t i = 0; i < trips_.size() && found < 0; ++i) {
      if (trips_[i].storage->key() == key) found = static_cast<int>(i);
    }
    if (found < 0) {
      trips_.push_back(Trip{std::make_unique<StorageTrip>(t, stage_)});
      found = static_cast<int>(trips_.size() - 1);
    }
    s.trip = found;
    s.view.emplace(t);
  }
  saved_.push_back(std::move(s));
  return saved_.size() - 1;
}

void OffloadSet::offload() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Trip& trip : trips_) trip.storage->wait_out();
  // A storage is ours to move when its only references are our aliases: the stage's inputs
  // and outputs, modules' buffers and anything else someone holds stay on the device.
  std::vector<std::size_t> aliases(trips_.size(), 0);
  for (const Saved& s : saved_) {
    if (s.trip >= 0) ++aliases[static_cast<std::size_t>(s.trip)];
  }
  for (const Saved& s : saved_) {
    if (s.trip < 0) continue;
    Trip& trip = trips_[static_cast<std::size_t>(s.trip)];
    trip.offloaded = static_cast<std::size_t>(s.device.storage().use_count()) == aliases[static_cast<std::size_t>(s.trip)];
  }
  for (Saved& s : saved_) {
    if (s.trip < 0) continue;
    Trip& trip = trips_[static_cast<std::size_t>(s.trip)];
    if (trip.offloaded) {
      s.device = at::Tensor();  // the last device references go here
      ++trip.pending;
      trip.storage->keep_on_host();
    } else {
      s.trip = -1;
    }
  }
  for (Trip& trip : trips_) {
    if (!trip.offloaded) trip.storage.reset();
  }
}

void OffloadSet::prefetch() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Trip& trip : trips_) {
    if (trip.offloaded && !trip.restored.defined()) trip.storage->start_in();
  }
}

at::Tensor OffloadSet::unpack(std::size_t index) {
  std::lock_guard<std::mutex> lock(mutex_);
  Saved& s = saved_.at(index);
  if (s.trip < 0) return s.device;
  Trip& trip = trips_[static_cast<std::size_t>(s.trip)];
  if (!trip.restored.defined()) trip.restored = trip.storage->take_in();
  at::Tensor out = s.view->on(trip.restored);
  if (!s.unpacked) {
    s.unpacked = true;
    // The unpacked tensors hold the storage from here on, and autograd frees it as it
    // would have freed the original: once the last node using it has run.
    if (--trip.pending == 0) trip.restored = at::Tensor();
  }
  return out;
}

void OffloadSet::release(std::size_t index) {
  std::lock_guard<std::mutex> lock(mutex_);
  Saved& s = saved_.at(index);
  // Autograd let go of this saved tensor, unpacked or not: so does the set.
  s.device = at::Tensor();
  if (s.trip < 0 || s.unpacked) return;
  s.unpacked = true;
  Trip& trip = trips_[static_cast<std::size_t>(s.trip)];
  if (--trip.pending == 0) trip.restored = at::Tensor();
}

std::uint64_t OffloadSet::host_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::uint64_t n = 0;
  for (const Trip& trip : trips_) {
    if (trip.offloaded) n += trip.storage->nbytes();
  }
  return n;
}

// ---------------------------------------------------------------- the engine

namespace {

thread_local std::shared_ptr<OffloadSet> t_current;

struct OffloadHooks : torch::autograd::SavedVariableHooks {
  explicit OffloadHooks(std::shared_ptr<OffloadSet> s) : set(std::move(s)) {}
  ~OffloadHooks() override {
    if (packed) set->release(index);
  }
  void call_pack_hook(const at::Tensor& tensor) override {
    index = set->pack(tensor);
    packed = true;
  }
  at::Tensor call_unpack_hook() override { return set->unpack(index); }

  std::shared_ptr<OffloadSet> set;
  std::size_t index = 0;
  bool packed = false;
};

// LibTorch gives saved-tensor hooks only to Python (torch.autograd.graph.saved_tensors_hooks):
// the C++ engine asks itself for default hooks, and only Python's engine has any. This one
// has them while an OffloadScope is alive on the thread that saves.
class OffloadEngine : public torch::autograd::Engine {
 public:
  std::unique_ptr<torch::autograd::SavedVariableHooks> get_default_saved_variable_hooks() override {
    if (!t_current) return nullptr;
    return std::make_unique<OffloadHooks>(t_current);
  }
};

torch::autograd::Engine& offload_engine() {
  // Never destroyed: worker threads may outlive static destruction order.
  static auto* engine = new OffloadEngine();
  return *engine;
}

void install_engine() {
  static std::once_flag once;
  std::call_once(once, [] { torch::autograd::set_default_engine_stub(&offload_engine); });
}

}  // namespace

OffloadScope::OffloadScope(std::shared_ptr<OffloadSet> set) {
  install_engine();
  previous_ = std::move(t_current);
  t_current = std::move(set);
}

OffloadScope::~OffloadScope() { t_current = std::move(previous_); }

}  // namespace detail

// ---------------------------------------------------------------- the public functions

bool can_offload(const torch::Device& device) {
  return device.is_cuda() || (device.is_cpu() && detail::host_link_emulated());
}

std::uint64_t host_memory_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

void check_offload(const torch::Device& device, std::uint64_t host_bytes, const std::string& what) {
  if (!can_offload(device)) {
    throw UserError(fmt::format(
        "{} offloads to pinned host memory, which needs a CUDA device; this model runs on {}, where "
        "there is no separate device memory to free. Run on CUDA, or plan again from a profile made "
        "on this device (no plan made on the CPU offloads)",
        what, device.str()));
  }
  if (device.is_cuda()) {
    try {
      (void)at::empty({1}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
    } catch (const std::exception& e) {
      throw UserError(fmt::format("{} offloads {} to pinned host memory, but no pinned memory could be "
                                  "allocated ({}); run without offload",
                                  what, format_bytes(host_bytes), e.what()));
    }
  }
  const std::uint64_t free_bytes = host_memory_available();
  if (free_bytes > 0 && host_bytes > free_bytes) {
    throw UserError(fmt::format("{} needs {} ({} bytes) of host memory for what it offloads, but this "
                                "machine has {} free; choose a plan that offloads less (a higher --budget, "
                                "or a plan made without offload)",
                                what, format_bytes(host_bytes), host_bytes, format_bytes(free_bytes)));
  }
}

HostLink measure_host_link(const torch::Device& device, std::uint64_t bytes) {
  HostLink link;
  if (!can_offload(device)) return link;
  // Big enough that the fixed cost of a copy is small beside it, small enough to be quick.
  const auto n = static_cast<std::int64_t>(std::clamp<std::uint64_t>(bytes, 1 << 20, 256 << 20));
  const at::Tensor dev = at::ones({n}, at::TensorOptions().dtype(at::kByte).device(device));
  const at::Tensor host = detail::host_bytes(n, device);
  c10::impl::VirtualGuardImpl impl(device.type());
  auto timed = [&](bool out) {
    std::vector<double> ms;
    for (int rep = 0; rep < 6; ++rep) {
      if (device.is_cuda()) impl.synchronizeStream(detail::current_stream(device));
      const auto t0 = std::chrono::steady_clock::now();
      if (device.is_cuda()) {
        const c10::Stream side = out ? detail::side_streams(device).out : detail::side_streams(device).in;
        c10::StreamGuard guard(side);
        (out ? host : dev).copy_(out ? dev : host, /*non_blocking=*/true);
        impl.synchronizeStream(side);
      } else {
        (out ? host : dev).copy_(out ? dev : host);
      }
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin() + 1, ms.end());  // the first copy warms up
    const double median = ms[1 + (ms.size() - 1) / 2];
    return static_cast<double>(n) / std::max(median, 1e-6);
  };
  link.d2h_bytes_per_ms = timed(true);
  link.h2d_bytes_per_ms = timed(false);
  return link;
}

namespace offload_testing {
void emulate_host_link_on_cpu(bool on) { detail::g_emulated.store(on); }
}  // namespace offload_testing

}  // namespace tidemark::runtime
