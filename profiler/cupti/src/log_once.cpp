#include "log_once.hpp"

#include <cstdio>
#include <mutex>
#include <set>

namespace tidemark::profiler::detail {

void log_once(const std::string& key, const std::string& message) noexcept {
  try {
    static std::mutex mutex;
    static std::set<std::string> seen;
    std::lock_guard<std::mutex> lock(mutex);
    if (!seen.insert(key).second) return;
    std::fprintf(stderr, "tidemark: %s\n", message.c_str());
  } catch (...) {
    // Out of memory while logging: nothing better to do than stay silent.
  }
}

}  // namespace tidemark::profiler::detail
