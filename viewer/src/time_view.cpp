#include "tidemark/viewer/time_view.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace tidemark::viewer {

void TimeView::reset(double data_begin_us, double data_end_us) {
  if (!(data_end_us > data_begin_us)) data_end_us = data_begin_us + kMinSpanUs;
  // A margin of 1% so the first and last spans do not touch the plot's edges.
  const double margin = (data_end_us - data_begin_us) * 0.01;
  limit_begin_ = data_begin_us - margin;
  limit_end_ = data_end_us + margin;
  begin_ = limit_begin_;
  end_ = limit_end_;
}

void TimeView::set(double begin_us, double end_us) {
  if (end_us < begin_us) std::swap(begin_us, end_us);
  begin_ = begin_us;
  end_ = end_us;
  clamp();
}

bool TimeView::fully_zoomed_out() const {
  return begin_ <= limit_begin_ + 1e-9 && end_ >= limit_end_ - 1e-9;
}

void TimeView::zoom(double factor, double anchor_us) {
  if (!(factor > 0) || !std::isfinite(factor)) return;
  const double old_span = span();
  double new_span = std::clamp(old_span * factor, std::min(kMinSpanUs, limit_end_ - limit_begin_),
                               limit_end_ - limit_begin_);
  // Keep the anchor's fraction of the width: what was under the cursor stays under it.
  const double frac = old_span > 0 ? (anchor_us - begin_) / old_span : 0.5;
  begin_ = anchor_us - frac * new_span;
  end_ = begin_ + new_span;
  clamp();
}

void TimeView::pan(double delta_us) {
  begin_ += delta_us;
  end_ += delta_us;
  clamp();
}

void TimeView::clamp() {
  const double limit = limit_end_ - limit_begin_;
  double s = std::clamp(end_ - begin_, std::min(kMinSpanUs, limit), limit);
  if (!std::isfinite(begin_)) begin_ = limit_begin_;
  end_ = begin_ + s;
  if (begin_ < limit_begin_) {
    begin_ = limit_begin_;
    end_ = begin_ + s;
  }
  if (end_ > limit_end_) {
    end_ = limit_end_;
    begin_ = end_ - s;
  }
}

double nice_time_step(double span_us, int max_ticks) {
  if (!(span_us > 0) || max_ticks < 1) return 1;
  const double raw = span_us / max_ticks;
  double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= raw) return std::max(1.0, m * p);
  }
  return std::max(1.0, 10 * p);
}

std::vector<double> time_ticks(double begin_us, double end_us, int max_ticks) {
  std::vector<double> out;
  const double step = nice_time_step(end_us - begin_us, max_ticks);
  for (double t = std::ceil(begin_us / step) * step; t <= end_us; t += step) out.push_back(t);
  return out;
}

std::string format_time(double us, double step_us, double scale_us) {
  const double a = std::fabs(us);
  const double scale = scale_us > 0 ? scale_us : a;
  // One unit for the whole axis (from its scale), decimals enough to tell ticks apart.
  const double unit = scale >= 1e6 ? 1e6 : scale >= 1e3 ? 1e3 : 1.0;
  const char* name = unit == 1e6 ? "s" : unit == 1e3 ? "ms" : "µs";
  int d = 0;
  if (step_us > 0) {
    const double s = step_us / unit;
    if (s < 1) d = std::min(6, static_cast<int>(std::ceil(-std::log10(s) - 1e-9)));
  } else {
    const double v = a / unit;
    d = v >= 100 ? 1 : v >= 10 ? 2 : 3;
    if (unit == 1.0) d = 0;
  }
  // No "-0 ms" on a tick that is zero up to rounding.
  double v = us / unit;
  if (std::fabs(v) < 0.5 * std::pow(10.0, -d)) v = 0;
  return fmt::format("{:.{}f} {}", v, d, name);
}

double nice_byte_step(double max_bytes, int max_ticks) {
  if (!(max_bytes > 0) || max_ticks < 1) return 1;
  const double raw = max_bytes / max_ticks;
  double unit = 1;
  while (unit * 1024 <= raw) unit *= 1024;
  for (double m : {1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1024.0}) {
    if (m * unit >= raw) return m * unit;
  }
  return 1024 * unit;
}

std::string format_byte_tick(double bytes) {
  if (bytes <= 0) return "0";
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  double v = bytes;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  if (std::fabs(v - std::round(v)) < 1e-6) return fmt::format("{:.0f} {}", v, kUnits[u]);
  return fmt::format("{:.1f} {}", v, kUnits[u]);
}

}  // namespace tidemark::viewer
