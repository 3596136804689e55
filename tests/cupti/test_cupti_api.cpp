// The dlopen table over libcupti (profiler/cupti/src/cupti_api.hpp): where libcupti is
// missing or is not CUPTI, the table reports why and stays safe to call.
#include <cupti.h>

#include <string>

#include "catch.hpp"
#include "cupti_api.hpp"

using namespace tidemark::profiler::detail;

TEST_CASE("a libcupti that cannot be found gives a reason and a table that only fails", "[cupti]") {
  const std::string missing = "libtidemark-no-such-cupti.so.13";
  const CuptiLibrary library = load_cupti_library({missing});
  CHECK_FALSE(library.available);
  CHECK(library.loaded_from.empty());
  INFO("why_not: " << library.why_not);
  CHECK(library.why_not.rfind("libcupti not available: ", 0) == 0);
  CHECK(library.why_not.find(missing) != std::string::npos);  // dlerror() names the file
  std::uint32_t version = 0;
  CHECK(library.api.cuptiGetVersion(&version) == CUPTI_ERROR_NOT_INITIALIZED);
  CHECK(library.api.cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) ==
        CUPTI_ERROR_NOT_INITIALIZED);
  const char* name = nullptr;
  CHECK(library.api.cuptiGetResultString(CUPTI_SUCCESS, &name) == CUPTI_ERROR_NOT_INITIALIZED);
}

TEST_CASE("a library without CUPTI's functions is not taken for libcupti", "[cupti]") {
  const CuptiLibrary library = load_cupti_library({"libc.so.6"});
  CHECK_FALSE(library.available);
  INFO("why_not: " << library.why_not);
  CHECK(library.why_not.find("libc.so.6 lacks cuptiActivityDisable") != std::string::npos);
}

TEST_CASE("nothing to try is a reason too", "[cupti]") {
  const CuptiLibrary library = load_cupti_library({});
  CHECK_FALSE(library.available);
  CHECK_FALSE(library.why_not.empty());
}

TEST_CASE("libcupti is looked for by soname first, then in the build's toolkit", "[cupti]") {
  const auto candidates = cupti_library_candidates();
  REQUIRE(candidates.size() >= 2);
  CHECK(candidates[0] == "libcupti.so.13");
  CHECK(candidates[1] == "libcupti.so");
  for (std::size_t i = 2; i < candidates.size(); ++i) CHECK(candidates[i].front() == '/');
}

TEST_CASE("the process's libcupti, where this machine has one", "[cupti]") {
  const CuptiLibrary& library = cupti_library();
  CHECK(&library == &cupti_library());  // loaded once
  if (!library.available) {
    INFO("why_not: " << library.why_not);
    CHECK_FALSE(library.why_not.empty());
    WARN("no libcupti here: " << library.why_not);
    return;
  }
  CHECK_FALSE(library.loaded_from.empty());
  std::uint32_t version = 0;
  REQUIRE(cupti().cuptiGetVersion(&version) == CUPTI_SUCCESS);  // needs no GPU
  CHECK(version > 0);  // its layout version is checked when a timer starts
}
