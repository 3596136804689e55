// make_cupti_timer in every configuration: not compiled, compiled without a GPU (this is
// what CI and the development machines exercise), compiled with a GPU.
#include <string>

#include "catch.hpp"
#include "cupti/cuda_driver.hpp"
#include "tidemark/profiler/cupti_timer.hpp"

using namespace tidemark::profiler;
using tidemark::profiler::test::CudaDriver;

TEST_CASE("the generated config header agrees with the library", "[cupti]") {
  CHECK(cupti_compiled() == (TIDEMARK_HAS_CUPTI == 1));
#if TIDEMARK_HAS_CUPTI
  CHECK(TIDEMARK_CUPTI_API_VERSION / 100 == 1300);
#endif
}

TEST_CASE("make_cupti_timer fails gracefully where CUPTI cannot trace", "[cupti]") {
  if (cupti_compiled() && CudaDriver::has_gpu()) {
    WARN("a GPU is present: the failure path is not reachable here ([cuda] tests cover it)");
    return;
  }
  for (int attempt = 0; attempt < 2; ++attempt) {  // a failed start leaves nothing behind
    std::string why_not;
    std::unique_ptr<GpuTimer> timer;
    REQUIRE_NOTHROW(timer = make_cupti_timer(why_not));
    CHECK(timer == nullptr);
    INFO("why_not: " << why_not);
    CHECK(why_not.find("CUPTI") != std::string::npos);
    if (cupti_compiled()) {
      // Without libcupti the dlopen table says so (with dlerror()'s text); with it but
      // without a GPU, CUPTI's first cuptiActivityEnable fails (999).
      const bool no_library = why_not.find("libcupti not available: ") != std::string::npos;
      const bool no_gpu = why_not.find("cuptiActivityEnable") != std::string::npos &&
                          why_not.find("CUPTI_ERROR") != std::string::npos;
      CHECK((no_library || no_gpu));
    } else {
      CHECK(why_not.find("not compiled") != std::string::npos);
    }
  }
}

TEST_CASE("only one CUPTI timer at a time", "[cupti][cuda]") {
  if (!cupti_compiled() || !CudaDriver::has_gpu()) {
    WARN("skipped: needs the CUPTI backend and a CUDA GPU");
    return;
  }
  std::string why_not;
  auto first = make_cupti_timer(why_not);
  INFO("why_not: " << why_not);
  REQUIRE(first != nullptr);
  std::string why_second;
  CHECK(make_cupti_timer(why_second) == nullptr);
  CHECK(why_second.find("CUPTI") != std::string::npos);
  first.reset();
  std::string why_third;
  CHECK(make_cupti_timer(why_third) != nullptr);  // a destroyed timer frees the slot
}
