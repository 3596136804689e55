#pragma once
// Kineto's CUPTI_CALL: a failed CUPTI call is logged once (per call site and error) with
// CUPTI's error string and reported to the caller, never thrown. Only for files compiled
// with the CUPTI backend.
#include <cupti.h>

#include <string>

#include "cupti_api.hpp"

namespace tidemark::profiler::detail {

// "cuptiX(...) failed: CUPTI_ERROR_UNKNOWN (description)".
std::string describe_cupti_failure(CUptiResult result, const char* call);

// True on CUPTI_SUCCESS; otherwise logs once and returns false.
bool cupti_ok(CUptiResult result, const char* call) noexcept;

}  // namespace tidemark::profiler::detail

// `expr` is a call by CUPTI's name, e.g. TIDEMARK_CUPTI_CALL(cuptiActivityFlushAll(0)); it
// goes through the loaded table (cupti_api.hpp), never to a linked libcupti.
#define TIDEMARK_CUPTI_CALL(expr) \
  ::tidemark::profiler::detail::cupti_ok(::tidemark::profiler::detail::cupti().expr, #expr)
