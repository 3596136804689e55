#pragma once
// The viewer's colours as RGBA bytes packed little-endian into a uint32 (R in the low
// byte): the layout of Dear ImGui's ImU32 and of GL_RGBA / GL_UNSIGNED_BYTE pixels, so one
// value serves the rasterized plots, the ImGui widgets and the screenshot tests.
//
// Categories and phases use distinct hues (every pair differs by more than 30 on some
// channel) so that a test can find each category in a screenshot by its exact colour.
#include <cstdint>

#include "tidemark/core/trace.hpp"

namespace tidemark::viewer {

constexpr std::uint32_t rgba(unsigned r, unsigned g, unsigned b, unsigned a = 255) {
  return (r & 0xFFu) | (g & 0xFFu) << 8 | (b & 0xFFu) << 16 | (a & 0xFFu) << 24;
}
constexpr unsigned red_of(std::uint32_t c) { return c & 0xFFu; }
constexpr unsigned green_of(std::uint32_t c) { return (c >> 8) & 0xFFu; }
constexpr unsigned blue_of(std::uint32_t c) { return (c >> 16) & 0xFFu; }
constexpr unsigned alpha_of(std::uint32_t c) { return (c >> 24) & 0xFFu; }

namespace palette {

inline constexpr std::uint32_t kCategory[kCategoryCount] = {
    rgba(78, 121, 167),   // parameter: blue
    rgba(242, 142, 43),   // gradient: orange
    rgba(118, 183, 178),  // optimizer_state: teal
    rgba(237, 201, 72),   // input: yellow
    rgba(225, 87, 89),    // activation: red
    rgba(176, 122, 161),  // temporary: mauve
};
inline constexpr std::uint32_t kForward = rgba(96, 176, 86);      // green
inline constexpr std::uint32_t kBackward = rgba(88, 156, 232);    // sky blue
inline constexpr std::uint32_t kRecompute = rgba(236, 96, 206);   // magenta: what the plan costs
inline constexpr std::uint32_t kCopyOut = rgba(188, 189, 34);     // olive: offload to host
inline constexpr std::uint32_t kCopyIn = rgba(40, 200, 240);      // cyan: back from host
inline constexpr std::uint32_t kHost = rgba(150, 230, 120);       // pinned host bytes, a line

inline constexpr std::uint32_t kBackground = rgba(22, 23, 28);    // window (glClear)
inline constexpr std::uint32_t kPlotBg = rgba(30, 32, 40);
inline constexpr std::uint32_t kGrid = rgba(255, 255, 255, 22);
inline constexpr std::uint32_t kAxisText = rgba(170, 175, 185);
inline constexpr std::uint32_t kBudget = rgba(255, 70, 70);
inline constexpr std::uint32_t kPredicted = rgba(235, 235, 235);
inline constexpr std::uint32_t kPeak = rgba(255, 225, 30);
inline constexpr std::uint32_t kStep = rgba(255, 255, 255, 60);
inline constexpr std::uint32_t kTrough = rgba(255, 255, 255, 70);
inline constexpr std::uint32_t kLaneStripe = rgba(255, 255, 255, 9);
inline constexpr std::uint32_t kLaneSelected = rgba(70, 82, 120);

inline constexpr std::uint32_t category(MemoryCategory c) { return kCategory[static_cast<int>(c)]; }
inline constexpr std::uint32_t phase(Phase p) {
  switch (p) {
    case Phase::Forward: return kForward;
    case Phase::Backward: return kBackward;
    case Phase::Recompute: return kRecompute;
    case Phase::CopyOut: return kCopyOut;
    case Phase::CopyIn: return kCopyIn;
  }
  return kRecompute;
}

}  // namespace palette

// Colour arithmetic for the panels and the rasterizer.
std::uint32_t with_alpha(std::uint32_t c, float alpha);
std::uint32_t scaled(std::uint32_t c, float factor);             // darker (< 1) or lighter (> 1)

// src over an opaque dst, rounded as GL's SRC_ALPHA / ONE_MINUS_SRC_ALPHA blend would be.
// Inline: the rasterizer calls it per pixel.
inline std::uint32_t blend_over(std::uint32_t dst, std::uint32_t src) {
  const unsigned a = alpha_of(src);
  if (a == 255) return src;
  if (a == 0) return dst;
  auto mix = [a](unsigned s, unsigned d) { return (s * a + d * (255 - a) + 127) / 255; };
  return rgba(mix(red_of(src), red_of(dst)), mix(green_of(src), green_of(dst)), mix(blue_of(src), blue_of(dst)), 255);
}

}  // namespace tidemark::viewer
