#pragma once
// Catch2 v2 (Debian 12, and the header-only copy scripts/gpu-carry carries) and v3
// (elsewhere) behind one include. v2 first: a machine can have v3 installed system-wide
// while the build found the carried v2 package, and the two must not mix.
#if __has_include(<catch2/catch.hpp>)
#include <catch2/catch.hpp>
// Tests use v3's matcher names; v2 calls the substring matcher Contains.
namespace Catch::Matchers {
inline StdString::ContainsMatcher ContainsSubstring(const std::string& s,
                                                    CaseSensitive::Choice cs = CaseSensitive::Yes) {
  return Contains(s, cs);
}
}  // namespace Catch::Matchers
#else
#include <catch2/catch_all.hpp>
using Catch::Approx;
#endif
