#include "cupti_check.hpp"

#include "log_once.hpp"

namespace tidemark::profiler::detail {

std::string describe_cupti_failure(CUptiResult result, const char* call) {
  const char* name = nullptr;
  if (cupti().cuptiGetResultString(result, &name) != CUPTI_SUCCESS || !name) name = "unknown CUPTI error";
  std::string text = std::string(call) + " failed: " + name;
  const char* message = nullptr;
  if (cupti().cuptiGetErrorMessage(result, &message) == CUPTI_SUCCESS && message &&
      std::string(message) != name)
    text += std::string(" (") + message + ")";
  return text;
}

bool cupti_ok(CUptiResult result, const char* call) noexcept {
  if (result == CUPTI_SUCCESS) return true;
  try {
    log_once(std::string("cupti:") + call + ":" + std::to_string(static_cast<int>(result)),
             "CUPTI: " + describe_cupti_failure(result, call) +
                 " (GPU stage times are incomplete or off; training goes on)");
  } catch (...) {
  }
  return false;
}

}  // namespace tidemark::profiler::detail
