#include "svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace {

// A "nice" step for about `n` ticks over `span`.
double tick_step(double span, int n) {
  double raw = span / n;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (raw <= m * mag) return m * mag;
  }
  return 10 * mag;
}

}  // namespace

std::string svg_plot(const std::string& title, const std::string& x_label, const std::string& y_label,
                     const std::vector<SvgSeries>& series) {
  const double W = 900, H = 560, left = 80, right = 200, top = 50, bottom = 60;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& s : series) {
    for (const auto& [x, y] : s.points) {
      x0 = std::min(x0, x);
      x1 = std::max(x1, x);
      y0 = std::min(y0, y);
      y1 = std::max(y1, y);
    }
  }
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  const double xpad = std::max((x1 - x0) * 0.05, 1e-9), ypad = std::max((y1 - y0) * 0.08, 1e-9);
  x0 -= xpad, x1 += xpad, y0 -= ypad, y1 += ypad;
  auto X = [&](double x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
  auto Y = [&](double y) { return H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom); };
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" "
      "font-size=\"13\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"28\" font-size=\"16\">{}</text>\n",
      W, H, left, title);
  const double xs = tick_step(x1 - x0, 8), ys = tick_step(y1 - y0, 6);
  for (double x = std::ceil(x0 / xs) * xs; x <= x1; x += xs) {
    out += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#ddd\"/>"
                       "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
                       X(x), top, H - bottom, H - bottom + 18, x);
  }
  for (double y = std::ceil(y0 / ys) * ys; y <= y1; y += ys) {
    out += fmt::format("<line x1=\"{1}\" x2=\"{2}\" y1=\"{0:.1f}\" y2=\"{0:.1f}\" stroke=\"#ddd\"/>"
                       "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5:g}</text>\n",
                       Y(y), left, W - right, left - 6, Y(y) + 4, y);
  }
  out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n",
                     left, top, W - left - right, H - top - bottom);
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", (left + W - right) / 2,
                     H - 15, x_label);
  out += fmt::format("<text transform=\"translate(20,{}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     (top + H - bottom) / 2, y_label);
  int row = 0;
  for (const auto& s : series) {
    if (s.line && s.points.size() > 1) {
      std::string pts;
      for (const auto& [x, y] : s.points) pts += fmt::format("{:.1f},{:.1f} ", X(x), Y(y));
      out += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", pts,
                         s.color, s.dashed ? " stroke-dasharray=\"6,4\"" : "");
    }
    for (const auto& [x, y] : s.points) {
      out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\" fill=\"{}\"/>\n", X(x), Y(y), s.color);
    }
    const double ly = top + 10 + 20 * row++;
    out += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"{3}\" stroke-width=\"3\"{4}/>"
                       "<text x=\"{5}\" y=\"{6}\">{7}</text>\n",
                       W - right + 15, W - right + 40, ly, s.color, s.dashed ? " stroke-dasharray=\"6,4\"" : "",
                       W - right + 46, ly + 4, s.name);
  }
  out += "</svg>\n";
  return out;
}
