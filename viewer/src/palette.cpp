#include "tidemark/viewer/palette.hpp"

#include <algorithm>

namespace tidemark::viewer {

std::uint32_t with_alpha(std::uint32_t c, float alpha) {
  const unsigned a = static_cast<unsigned>(std::clamp(alpha, 0.0f, 1.0f) * 255.0f + 0.5f);
  return rgba(red_of(c), green_of(c), blue_of(c), a);
}

std::uint32_t scaled(std::uint32_t c, float factor) {
  auto ch = [&](unsigned v) { return static_cast<unsigned>(std::clamp(static_cast<float>(v) * factor, 0.0f, 255.0f)); };
  return rgba(ch(red_of(c)), ch(green_of(c)), ch(blue_of(c)), alpha_of(c));
}

}  // namespace tidemark::viewer
