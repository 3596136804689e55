#pragma once
// A minimal SVG scatter/line plot for benchmark fronts: no plotting dependency to install.
#include <string>
#include <vector>

struct SvgSeries {
  std::string name;
  std::string color;
  std::vector<std::pair<double, double>> points;  // drawn in this order
  bool line = true;
  bool dashed = false;
};

// Writes an SVG of the series; axes start at 0 unless the data says otherwise.
std::string svg_plot(const std::string& title, const std::string& x_label, const std::string& y_label,
                     const std::vector<SvgSeries>& series);
