// TimeView zoom and pan, and the axis helpers (ticks, labels).
#include <cmath>

#include "catch.hpp"
#include "tidemark/viewer/time_view.hpp"

using namespace tidemark::viewer;

TEST_CASE("wheel zoom keeps the time under the cursor in place", "[viewer][time]") {
  TimeView v;
  v.reset(0, 1e6);
  CHECK(v.fully_zoomed_out());
  const double x0 = 100, width = 1400;
  for (double x : {150.0, 800.0, 1490.0}) {
    for (int i = 0; i < 20; ++i) {
      const double anchor = v.t_of(x, x0, width);
      v.zoom(0.8, anchor);
      CHECK(v.x_of(anchor, x0, width) == Approx(x).margin(1e-6));
    }
    for (int i = 0; i < 40; ++i) v.zoom(1.25, v.t_of(x, x0, width));
    CHECK(v.fully_zoomed_out());
  }
}

TEST_CASE("zoom and pan stay inside the data and above the minimum span", "[viewer][time]") {
  TimeView v;
  v.reset(1000, 2000);
  for (int i = 0; i < 100; ++i) v.zoom(0.5, 1500);
  CHECK(v.span() == Approx(TimeView::kMinSpanUs));
  v.pan(1e9);
  CHECK(v.end() == Approx(v.limit_end()));
  v.pan(-1e9);
  CHECK(v.begin() == Approx(v.limit_begin()));
  for (int i = 0; i < 100; ++i) v.zoom(3, 1500);
  CHECK(v.begin() == Approx(v.limit_begin()));
  CHECK(v.end() == Approx(v.limit_end()));
  v.set(1800, 1200);  // reversed: swapped
  CHECK(v.begin() == Approx(1200));
  CHECK(v.end() == Approx(1800));
  v.zoom(0, 1500);  // ignored, not a crash
  v.zoom(std::nan(""), 1500);
  CHECK(v.span() == Approx(600));
  // A zero-length trace still gives a usable view.
  TimeView z;
  z.reset(5, 5);
  CHECK(z.span() > 0);
}

TEST_CASE("ticks step by 1-2-5 and labels share one unit", "[viewer][time]") {
  CHECK(nice_time_step(1000, 10) == 100);
  CHECK(nice_time_step(1000, 4) == 500);
  CHECK(nice_time_step(3, 10) == 1);  // never below a microsecond
  auto ticks = time_ticks(-50, 1000, 10);
  REQUIRE(!ticks.empty());
  CHECK(ticks.front() == 0);
  CHECK(ticks.size() <= 11);
  CHECK(format_time(1500000, 500000, 2e6) == "1.5 s");
  CHECK(format_time(250000, 50000, 2e7) == "0.25 s");
  CHECK(format_time(12500, 500, 20000) == "12.5 ms");
  CHECK(format_time(80, 10, 100) == "80 µs");
  CHECK(format_time(-0.0001, 10, 500) == "0 µs");  // never "-0"
  CHECK(format_time(-200, 100, 20000) == "-0.2 ms");
  CHECK(format_time(63600) == "63.60 ms");
}

TEST_CASE("byte axis steps are round in binary units", "[viewer][time]") {
  const double mib = 1024.0 * 1024.0;
  CHECK(nice_byte_step(500 * mib, 5) == 100 * mib);
  CHECK(nice_byte_step(3 * 1024 * mib, 4) == 1024 * mib);
  CHECK(format_byte_tick(0) == "0");
  CHECK(format_byte_tick(512 * mib) == "512 MiB");
  CHECK(format_byte_tick(1.5 * 1024 * mib) == "1.5 GiB");
  CHECK(format_byte_tick(2048) == "2 KiB");
}
