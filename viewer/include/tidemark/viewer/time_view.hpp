#pragma once
// The visible time range shared by every panel (timelines and lanes of one or two traces),
// and the axis arithmetic around it: zoom about an anchor, pan, clamping, tick placement.
// No ImGui here, so zoom and pan are unit-tested.
#include <cstdint>
#include <string>
#include <vector>

namespace tidemark::viewer {

class TimeView {
 public:
  // Narrowest visible range: one microsecond per ~10 pixels is already past the data's
  // resolution (times are whole microseconds).
  static constexpr double kMinSpanUs = 100.0;

  // The data's range; the view shows all of it (with a small margin).
  void reset(double data_begin_us, double data_end_us);
  // Shows [begin, end], clamped to the data range and the minimum span.
  void set(double begin_us, double end_us);

  // factor < 1 zooms in. The time under `anchor_us` stays where it is on screen.
  void zoom(double factor, double anchor_us);
  void pan(double delta_us);

  double begin() const { return begin_; }
  double end() const { return end_; }
  double span() const { return end_ - begin_; }
  double limit_begin() const { return limit_begin_; }
  double limit_end() const { return limit_end_; }
  bool fully_zoomed_out() const;

  // Screen mapping for a plot whose time axis runs from x0 over `width` pixels.
  double x_of(double t_us, double x0, double width) const { return x0 + (t_us - begin_) / span() * width; }
  double t_of(double x, double x0, double width) const { return begin_ + (x - x0) / width * span(); }

 private:
  void clamp();
  double limit_begin_ = 0, limit_end_ = 1;
  double begin_ = 0, end_ = 1;
};

// Tick positions: a 1-2-5 step in microseconds that gives at most `max_ticks` ticks.
double nice_time_step(double span_us, int max_ticks);
std::vector<double> time_ticks(double begin_us, double end_us, int max_ticks);
// "1.25 s", "340.0 ms", "80 µs". The unit comes from `scale_us` (an axis passes its visible
// end, so all its labels share one unit; 0: the value itself) and the decimals from
// `step_us` (the tick step; 0: about four significant digits).
std::string format_time(double us, double step_us = 0, double scale_us = 0);

// A step in bytes for an axis from 0 to max_bytes: 1-2-5 times a power of 1024 (so labels
// read "256 MiB", not "268.4 MB"), at most `max_ticks` ticks.
double nice_byte_step(double max_bytes, int max_ticks);
// Axis label for a byte tick: "0", "512 MiB", "1.5 GiB".
std::string format_byte_tick(double bytes);

}  // namespace tidemark::viewer
