// make_cupti_timer with the CUPTI backend compiled in.
#include "tidemark/profiler/cupti_timer.hpp"

#include <exception>

#include "cupti_activity_source.hpp"
#include "log_once.hpp"

namespace tidemark::profiler {

bool cupti_compiled() noexcept { return true; }

std::unique_ptr<GpuTimer> make_cupti_timer(std::string& why_not,
                                           const CuptiTimerOptions& options) noexcept {
  try {
    auto source = detail::CuptiActivitySource::start(options, why_not);
    if (!source) return nullptr;
    return std::make_unique<GpuTimer>(std::move(source));
  } catch (const std::exception& e) {
    why_not = std::string("CUPTI: could not start the GPU timer: ") + e.what();
  } catch (...) {
    why_not = "CUPTI: could not start the GPU timer";
  }
  detail::log_once("cupti:start:exception", why_not);
  return nullptr;
}

}  // namespace tidemark::profiler
