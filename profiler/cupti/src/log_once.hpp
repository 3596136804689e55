#pragma once
// Profiler failures must be visible but must not flood stderr from a per-scope call site:
// each distinct key is printed once per process.
#include <string>

namespace tidemark::profiler::detail {

// Prints "tidemark: <message>" to stderr the first time `key` is seen. Never throws.
void log_once(const std::string& key, const std::string& message) noexcept;

}  // namespace tidemark::profiler::detail
