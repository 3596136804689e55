#include "cupti_buffer_pool.hpp"

#include <cstdlib>
#include <string>

#include "cupti_api.hpp"
#include "cupti_check.hpp"

namespace tidemark::profiler::detail {
namespace {

// Records in a buffer must be ACTIVITY_RECORD_ALIGNMENT-aligned, and aligned_alloc wants
// a size that is a multiple of the alignment.
std::size_t round_up(std::size_t n) {
  return (n + ACTIVITY_RECORD_ALIGNMENT - 1) / ACTIVITY_RECORD_ALIGNMENT * ACTIVITY_RECORD_ALIGNMENT;
}

}  // namespace

CuptiBufferPool& CuptiBufferPool::instance() {
  static CuptiBufferPool* pool = new CuptiBufferPool;
  return *pool;
}

bool CuptiBufferPool::register_callbacks(std::string& why_not) {
  // Registering is process-wide and the callbacks never change, so once is enough; a
  // failure is remembered so that every later timer reports it too.
  static const CUptiResult result = cupti().cuptiActivityRegisterCallbacks(on_requested, on_completed);
  if (result == CUPTI_SUCCESS) return true;
  const char* call = "cuptiActivityRegisterCallbacks";
  cupti_ok(result, call);
  why_not = "CUPTI: " + describe_cupti_failure(result, call);
  return false;
}

void CuptiBufferPool::open(std::size_t buffer_bytes, std::size_t max_buffers) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::size_t bytes = round_up(buffer_bytes < (64u << 10) ? (64u << 10) : buffer_bytes);
  if (bytes != buffer_bytes_) {  // buffers of another size are not handed out again
    for (std::uint8_t* data : free_) release_locked(data);
    free_.clear();
  }
  buffer_bytes_ = bytes;
  max_buffers_ = max_buffers < 2 ? 2 : max_buffers;
  open_ = true;
}

void CuptiBufferPool::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  open_ = false;
  for (std::uint8_t* data : free_) release_locked(data);
  free_.clear();
  for (const CompletedBuffer& b : completed_) release_locked(b.data);
  completed_.clear();
}

std::vector<CompletedBuffer> CuptiBufferPool::take_completed() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<CompletedBuffer> out;
  out.swap(completed_);
  return out;
}

void CuptiBufferPool::recycle(const CompletedBuffer& buffer) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (open_ && buffer.size == buffer_bytes_) free_.push_back(buffer.data);
  else release_locked(buffer.data);
}

void CuptiBufferPool::release_locked(std::uint8_t* data) {
  std::free(data);
  --alive_;
}

void CUPTIAPI CuptiBufferPool::on_requested(std::uint8_t** buffer, std::size_t* size,
                                            std::size_t* max_records) {
  CuptiBufferPool& pool = instance();
  *buffer = nullptr;
  *size = 0;
  *max_records = 0;  // as many records as fit
  std::lock_guard<std::mutex> lock(pool.mutex_);
  if (!pool.open_) return;  // no timer: CUPTI drops the records
  if (!pool.free_.empty()) {
    *buffer = pool.free_.back();
    pool.free_.pop_back();
  } else if (pool.alive_ < pool.max_buffers_) {
    // Declining (nullptr) is CUPTI's protocol for "no memory": it drops and counts records.
    *buffer = static_cast<std::uint8_t*>(std::aligned_alloc(ACTIVITY_RECORD_ALIGNMENT, pool.buffer_bytes_));
    if (!*buffer) return;
    ++pool.alive_;
  } else {
    return;
  }
  *size = pool.buffer_bytes_;
}

void CUPTIAPI CuptiBufferPool::on_completed(CUcontext, std::uint32_t, std::uint8_t* buffer,
                                            std::size_t size, std::size_t valid_bytes) {
  if (!buffer) return;
  CuptiBufferPool& pool = instance();
  std::lock_guard<std::mutex> lock(pool.mutex_);
  if (!pool.open_) {
    pool.release_locked(buffer);
    return;
  }
  try {
    pool.completed_.push_back(CompletedBuffer{buffer, size, valid_bytes});
  } catch (...) {
    pool.release_locked(buffer);  // its records are lost; nothing may escape into CUPTI
  }
}

}  // namespace tidemark::profiler::detail
