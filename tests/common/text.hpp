#pragma once
// String checks shared by test files (one definition: sanitized builds compile each test
// target as one translation unit, where two file-local copies would collide).
#include <string>

namespace tidemark::testing {

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

inline bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace tidemark::testing
