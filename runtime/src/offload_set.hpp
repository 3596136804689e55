#pragma once
// Private: the pieces of Note [offload runtime] (runtime/offload.hpp) that the checkpoint
// and the executor share.
#include <ATen/ATen.h>
#include <c10/core/Event.h>
#include <c10/core/Stream.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace tidemark::runtime::detail {

// One device storage on a trip to host memory and back. Copying whole storages keeps
// views of one storage (q, k and v of one projection) together.
class StorageTrip {
 public:
  // Starts copying `t`'s storage to the host, after the work queued on the current stream.
  // `stage` names the copies in traces (-1: not traced).
  StorageTrip(const at::Tensor& t, int stage);
  ~StorageTrip();
  StorageTrip(const StorageTrip&) = delete;
  StorageTrip& operator=(const StorageTrip&) = delete;

  // Returns when the copy out is complete, and lets go of the device storage.
  void wait_out();
  // The host copy is the one that counts from now on (traces show its bytes until it goes).
  void keep_on_host();
  // Allocates the storage on the device again and starts the copy back.
  void start_in();
  // The device storage as bytes, once the current stream waits for the copy back (which
  // starts here if start_in() was not called). Keeps the host copy: a second call copies again.
  at::Tensor take_in();

  std::uint64_t nbytes() const { return nbytes_; }
  const void* key() const { return key_; }

 private:
  void traced(bool to_host, std::int64_t t0_ns, std::int64_t t1_ns) const;

  c10::Device device_;
  int stage_ = -1;
  bool kept_ = false;
  std::int64_t out_t0_ = 0, out_t1_ = 0, in_t0_ = 0, in_t1_ = 0;
  std::uint64_t nbytes_ = 0;
  const void* key_ = nullptr;  // the device StorageImpl, for grouping while it lives
  at::Tensor source_;          // the device bytes until wait_out
  at::Tensor host_;
  at::Tensor in_;              // the device bytes between start_in and take_in
  std::optional<c10::Event> out_done_;
  std::optional<c10::Event> in_done_;
};

// A tensor's view of a storage: to rebuild the tensor on a restored copy of that storage.
struct ViewOf {
  explicit ViewOf(const at::Tensor& t);
  at::Tensor on(const at::Tensor& storage_bytes) const;

  at::ScalarType dtype;
  std::vector<std::int64_t> sizes, strides;
  std::int64_t offset = 0;
};

// The saved tensors of one offloaded stage in one step (Note [offload runtime]). Held by the
// saved-tensor hooks of the stage's graph and by the prefetch node on its outputs, so it
// lives until the stage's backward has released everything.
class OffloadSet {
 public:
  explicit OffloadSet(int stage) : stage_(stage) {}

  // The hook's side, during the forward and the backward.
  std::size_t pack(const at::Tensor& t);
  at::Tensor unpack(std::size_t index);
  // The saved tensor's hooks are gone (its node ran or the graph was freed).
  void release(std::size_t index);

  // After the stage's forward: every storage only autograd holds goes to the host; returns
  // when the copies are complete, with the device bytes freed.
  void offload();
  // When the stage's backward begins: every offloaded storage is allocated again and its
  // copy back started.
  void prefetch();
  std::uint64_t host_bytes() const;

 private:
  struct Saved {
    at::Tensor device;  // until offloaded; kept on the device when not ours to move
    int trip = -1;      // the storage's trip, or -1
    std::optional<ViewOf> view;
    bool unpacked = false;
  };
  struct Trip {
    std::unique_ptr<StorageTrip> storage;
    bool offloaded = false;
    at::Tensor restored;  // between the copy back and the last unpack
    int pending = 0;      // saved tensors on it not yet unpacked
  };

  int stage_;
  mutable std::mutex mutex_;
  std::vector<Saved> saved_;
  std::vector<Trip> trips_;
};

// While alive on this thread, every tensor autograd saves is packed into `set`.
class OffloadScope {
 public:
  explicit OffloadScope(std::shared_ptr<OffloadSet> set);
  ~OffloadScope();
  OffloadScope(const OffloadScope&) = delete;
  OffloadScope& operator=(const OffloadScope&) = delete;

 private:
  std::shared_ptr<OffloadSet> previous_;
};

// Whether the emulated CPU link of runtime::offload_testing is on.
bool host_link_emulated();

// The stage a checkpoint's offloaded inputs belong to, for traces: set by the executor
// around a checkpoint node (-1 elsewhere).
class CopyStage {
 public:
  explicit CopyStage(int stage);
  ~CopyStage();
  CopyStage(const CopyStage&) = delete;
  CopyStage& operator=(const CopyStage&) = delete;
  static int current();

 private:
  int previous_;
};

}  // namespace tidemark::runtime::detail
