// Loading libcupti at run time (see cupti_api.hpp for why).
// Sections: the table that did not load | candidates | loading
#include "cupti_api.hpp"

#include <dlfcn.h>

#include <exception>

// TIDEMARK_CUPTI_SEARCH_DIRS: ':'-separated CUPTI library directories of the CUDA toolkit
// found at configure time, defined for this file only (profiler/cupti/CMakeLists.txt).
#ifndef TIDEMARK_CUPTI_SEARCH_DIRS
#define TIDEMARK_CUPTI_SEARCH_DIRS ""
#endif

namespace tidemark::profiler::detail {
namespace {

// --- the table that did not load -----------------------------------------------------------
// Every entry is a function that fails, so a call through a table that did not load
// reports an error like any failed CUPTI call instead of jumping to null. Every function
// in the table returns CUptiResult; another signature would not compile here.
template <class F>
struct Unloaded;
template <class... Args>
struct Unloaded<CUptiResult(CUPTIAPI*)(Args...)> {
  static CUptiResult CUPTIAPI call(Args...) { return CUPTI_ERROR_NOT_INITIALIZED; }
};

CuptiApi unloaded_api() noexcept {
  CuptiApi api;
#define TIDEMARK_CUPTI_UNLOADED(name) api.name = &Unloaded<decltype(&::name)>::call;
  TIDEMARK_CUPTI_FUNCTIONS(TIDEMARK_CUPTI_UNLOADED)
#undef TIDEMARK_CUPTI_UNLOADED
  return api;
}

std::string last_dl_error(const char* fallback) {
  const char* e = dlerror();
  return e ? std::string(e) : std::string(fallback);
}

// Binds every function from `handle` into `api`; false with the missing one in `error`.
bool bind_all(void* handle, const std::string& where, CuptiApi& api, std::string& error) {
#define TIDEMARK_CUPTI_BIND(name)                                                     \
  {                                                                                   \
    dlerror();                                                                        \
    void* symbol = dlsym(handle, #name);                                              \
    if (!symbol) {                                                                    \
      error = where + " lacks " #name ": " + last_dl_error("symbol not found");       \
      return false;                                                                   \
    }                                                                                 \
    api.name = reinterpret_cast<decltype(&::name)>(symbol);                           \
  }
  TIDEMARK_CUPTI_FUNCTIONS(TIDEMARK_CUPTI_BIND)
#undef TIDEMARK_CUPTI_BIND
  return true;
}

}  // namespace

// --- candidates ----------------------------------------------------------------------------

std::vector<std::string> cupti_library_candidates() {
  // The soname of the CUDA 13 CUPTI, whose record layouts this backend reads; the
  // unversioned name is the toolkit's development link. cuptiGetVersion is checked after
  // loading either way (CuptiActivitySource::start).
  const char* const names[] = {"libcupti.so.13", "libcupti.so"};
  std::vector<std::string> out(std::begin(names), std::end(names));
  const std::string dirs = TIDEMARK_CUPTI_SEARCH_DIRS;
  std::size_t begin = 0;
  while (begin <= dirs.size()) {
    std::size_t end = dirs.find(':', begin);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(begin, end - begin);
    if (!dir.empty())
      for (const char* name : names) out.push_back(dir + "/" + name);
    begin = end + 1;
  }
  return out;
}

// --- loading -------------------------------------------------------------------------------

CuptiLibrary load_cupti_library(const std::vector<std::string>& candidates) noexcept {
  CuptiLibrary library;
  library.api = unloaded_api();
  try {
    std::string errors;
    for (const std::string& candidate : candidates) {
      dlerror();
      void* handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
      std::string error;
      if (handle) {
        CuptiApi api;
        if (bind_all(handle, candidate, api, error)) {
          library.api = api;
          library.available = true;
          library.loaded_from = candidate;
          return library;
        }
        // Not closed: harmless, and the process may share this handle with another user.
      } else {
        error = last_dl_error("dlopen failed");
      }
      if (errors.find(error) == std::string::npos) errors += (errors.empty() ? "" : "; ") + error;
    }
    library.why_not = "libcupti not available: " +
                      (candidates.empty() ? std::string("no library name to try") : errors);
  } catch (const std::exception& e) {
    library.api = unloaded_api();
    library.available = false;
    library.why_not.clear();
    try {
      library.why_not = std::string("libcupti not available: ") + e.what();
    } catch (...) {
    }
  }
  return library;
}

const CuptiLibrary& cupti_library() {
  static const CuptiLibrary library = load_cupti_library(cupti_library_candidates());
  return library;
}

}  // namespace tidemark::profiler::detail
