#pragma once
// The host buffers CUPTI fills with activity records. CUPTI's buffer callbacks
// (cuptiActivityRegisterCallbacks) take no user pointer and bufferCompleted runs on a
// CUPTI thread, so the pool is one process-wide object behind a mutex. Completed buffers
// wait here until the profiler thread parses them in collect(), then are reused.
#include <cupti.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace tidemark::profiler::detail {

struct CompletedBuffer {
  std::uint8_t* data = nullptr;
  std::size_t size = 0;         // bytes allocated
  std::size_t valid_bytes = 0;  // bytes of records CUPTI wrote
};

class CuptiBufferPool {
 public:
  // Never destroyed: CUPTI may hand a buffer back during exit, after static destructors.
  static CuptiBufferPool& instance();

  // Registers the callbacks with CUPTI (once per process); false if CUPTI refused
  // (already logged, reason in `why_not`).
  bool register_callbacks(std::string& why_not);

  // Starts handing out buffers of `buffer_bytes`, at most `max_buffers` alive at once.
  void open(std::size_t buffer_bytes, std::size_t max_buffers);
  // Stops handing out buffers and frees those held here; buffers still with CUPTI are
  // freed when it returns them.
  void close();

  std::vector<CompletedBuffer> take_completed();
  void recycle(const CompletedBuffer& buffer);

 private:
  CuptiBufferPool() = default;
  static void CUPTIAPI on_requested(std::uint8_t** buffer, std::size_t* size,
                                    std::size_t* max_records);
  static void CUPTIAPI on_completed(CUcontext context, std::uint32_t stream_id,
                                    std::uint8_t* buffer, std::size_t size,
                                    std::size_t valid_bytes);
  void release_locked(std::uint8_t* data);

  std::mutex mutex_;
  bool open_ = false;
  std::size_t buffer_bytes_ = 0;
  std::size_t max_buffers_ = 0;
  std::size_t alive_ = 0;  // allocated and not yet freed, wherever they are
  std::vector<std::uint8_t*> free_;
  std::vector<CompletedBuffer> completed_;
};

}  // namespace tidemark::profiler::detail
