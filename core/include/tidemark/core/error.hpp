#pragma once
// Errors the user can fix. The CLI catches UserError once, prints "error: <what>" and
// exits 2; a RunFailure (the run broke for an outside reason) prints "error: <what>" and
// exits 1; anything else escaping is a bug (exit 1). Messages name the file and field
// and say how to fix the input.
#include <stdexcept>
#include <string>

namespace tidemark {

class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file that cannot be read, parsed, or has the wrong schema, version or field values.
class FormatError : public UserError {
 public:
  using UserError::UserError;
};

// A budget below what any plan can reach; the message carries the feasible minimum.
class InfeasibleBudget : public UserError {
 public:
  InfeasibleBudget(const std::string& what, unsigned long long minimum_bytes)
      : UserError(what), minimum_bytes_(minimum_bytes) {}
  unsigned long long minimum_bytes() const { return minimum_bytes_; }

 private:
  unsigned long long minimum_bytes_;
};

// The run stopped for a reason outside the input: a data-parallel peer died, the network
// failed. Not a bug in tidemark, not fixable by changing flags.
class RunFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace tidemark
