// A program that must die under the sanitizers: run_sanitized_tests.sh runs it once per
// kind of report before trusting a clean test run, so a build or an ASAN_OPTIONS that
// silently lost a sanitizer (leak checking is the usual casualty) fails instead of passing.
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  const char* kind = argc > 1 ? argv[1] : "";
  // volatile: the compiler must not fold the bug away.
  volatile int index = 4;
  if (std::strcmp(kind, "leak") == 0) {
    static void* volatile kept;
    kept = std::malloc(64);
    kept = nullptr;  // the only pointer dropped: a leak at exit
    return 0;
  }
  if (std::strcmp(kind, "overflow") == 0) {
    std::vector<int> v(4);
    return v.data()[index];  // heap-buffer-overflow
  }
  if (std::strcmp(kind, "ub") == 0) {
    volatile int big = INT_MAX;
    return big + index > 0 ? 0 : 1;  // signed integer overflow
  }
  std::fprintf(stderr, "usage: sanitizer_canary leak|overflow|ub\n");
  return 2;
}
