#pragma once
// The CUPTI functions the backend calls, loaded from libcupti with dlopen on first use
// rather than linked.
//
// Note: this is why a CPU-only program that links tidemark neither links nor loads
// libcupti, and why the installed CMake package needs no CUDA toolkit: tidemark_cupti
// takes only CUPTI's headers at build time (for the types, constants and record layouts)
// and finds the library when make_cupti_timer first runs. Where libcupti cannot be loaded,
// make_cupti_timer returns nullptr with the dlerror() text as its reason.
//
// Only for files compiled with the CUPTI backend.
#include <cupti.h>

#include <string>
#include <vector>

// The functions, by their CUPTI names. Keep in step with what src/ calls:
//   grep -ohE "\bcupti[A-Z][A-Za-z]+\(" profiler/cupti/src/*
#define TIDEMARK_CUPTI_FUNCTIONS(X)        \
  X(cuptiActivityDisable)                  \
  X(cuptiActivityEnable)                   \
  X(cuptiActivityEnableDriverApi)          \
  X(cuptiActivityEnableRuntimeApi)         \
  X(cuptiActivityFlushAll)                 \
  X(cuptiActivityGetNextRecord)            \
  X(cuptiActivityGetNumDroppedRecords)     \
  X(cuptiActivityPopExternalCorrelationId) \
  X(cuptiActivityPushExternalCorrelationId)\
  X(cuptiActivityRegisterCallbacks)        \
  X(cuptiGetErrorMessage)                  \
  X(cuptiGetResultString)                  \
  X(cuptiGetVersion)

namespace tidemark::profiler::detail {

// Pointers typed from the CUPTI headers, so a call through the table is checked exactly
// like a direct call. Never null: in a table that did not load, every entry returns
// CUPTI_ERROR_NOT_INITIALIZED without doing anything.
struct CuptiApi {
#define TIDEMARK_CUPTI_MEMBER(name) decltype(&::name) name = nullptr;
  TIDEMARK_CUPTI_FUNCTIONS(TIDEMARK_CUPTI_MEMBER)
#undef TIDEMARK_CUPTI_MEMBER
};

struct CuptiLibrary {
  CuptiApi api;
  bool available = false;
  std::string loaded_from;  // the name or path dlopen succeeded with
  // When not available: "libcupti not available: " and each candidate's dlerror() text.
  std::string why_not;
};

// Where libcupti is looked for, in order: "libcupti.so.13" and "libcupti.so" by the
// dynamic loader's search (LD_LIBRARY_PATH, ldconfig; also finds a libcupti the process
// already loaded, such as PyTorch's), then the CUPTI library directories of the CUDA
// toolkit tidemark was built against.
std::vector<std::string> cupti_library_candidates();

// Tries `candidates` in order and takes the first that loads and has every function; a
// handle is never closed (CUPTI's threads may outlive any owner). Never throws.
CuptiLibrary load_cupti_library(const std::vector<std::string>& candidates) noexcept;

// The process's table, loaded once from cupti_library_candidates() (thread-safe; a
// function-local static). Throws only std::bad_alloc, and only before it has loaded.
const CuptiLibrary& cupti_library();
inline const CuptiApi& cupti() { return cupti_library().api; }

}  // namespace tidemark::profiler::detail
