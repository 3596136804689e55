// make_cupti_timer where the CUPTI backend was not compiled (TIDEMARK_WITH_CUPTI=OFF, or
// no CUDA toolkit with CUPTI of a supported version at configure time).
#include "tidemark/profiler/cupti_timer.hpp"

namespace tidemark::profiler {

bool cupti_compiled() noexcept { return false; }

std::unique_ptr<GpuTimer> make_cupti_timer(std::string& why_not,
                                           const CuptiTimerOptions&) noexcept {
  why_not =
      "CUPTI backend not compiled in (configure with TIDEMARK_WITH_CUPTI=ON where the "
      "CUDA 13.0 toolkit with CUPTI is found)";
  return nullptr;
}

}  // namespace tidemark::profiler
