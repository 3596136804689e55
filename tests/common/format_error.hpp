#pragma once
// The message a reader's FormatError carries, for tests of what bad input is told.
#include <functional>
#include <string>

#include "tidemark/core/error.hpp"

namespace tidemark::testing {

// What `f` throws as FormatError, or "(no FormatError)" when it throws none (so a check on
// the message fails and says why).
inline std::string format_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const FormatError& e) {
    return e.what();
  }
  return "(no FormatError)";
}

}  // namespace tidemark::testing
