#include "tidemark/core/fault.hpp"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace tidemark {
namespace {

struct Target {
  std::string name;
  long at = 0;  // 0: no fault armed
  std::atomic<long> seen{0};
};

Target& target() {
  static Target* t = [] {
    auto* t = new Target;
    const char* env = std::getenv("TIDEMARK_FAULT");
    if (!env) return t;
    std::string spec(env);
    auto at = spec.rfind('@');
    t->name = spec.substr(0, at);
    t->at = at == std::string::npos ? 1 : std::atol(spec.c_str() + at + 1);
    return t;
  }();
  return *t;
}

}  // namespace

void fault_point(std::string_view name) {
  Target& t = target();
  if (t.at <= 0 || name != t.name) return;
  if (t.seen.fetch_add(1) + 1 == t.at) ::kill(::getpid(), SIGKILL);
}

}  // namespace tidemark
