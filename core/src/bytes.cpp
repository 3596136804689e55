#include "tidemark/core/bytes.hpp"

#include <cctype>
#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <stdexcept>

#include "tidemark/core/error.hpp"

namespace tidemark {
namespace {

struct Unit {
  const char* name;
  double factor;
};

constexpr Unit kUnits[] = {
    {"B", 1},           {"KiB", 1024.0},     {"MiB", 1048576.0}, {"GiB", 1073741824.0},
    {"TiB", 1099511627776.0}, {"KB", 1e3},   {"MB", 1e6},        {"GB", 1e9},
    {"TB", 1e12},       {"K", 1024.0},       {"M", 1048576.0},   {"G", 1073741824.0},
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Splits "1.5GiB" into 1.5 and "GiB". Returns false when the number part is malformed.
bool split_number(std::string_view s, double& value, std::string_view& unit) {
  size_t i = 0;
  bool digits = false, dot = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!digits) return false;
  try {
    size_t used = 0;
    value = std::stod(std::string(s.substr(0, i)), &used);
    if (used != i) return false;
  } catch (const std::exception&) {
    return false;
  }
  unit = trim(s.substr(i));
  return std::isfinite(value);
}

}  // namespace

std::uint64_t parse_bytes(std::string_view text, std::string_view what) {
  std::string_view s = trim(text);
  double value = 0;
  std::string_view unit;
  if (!split_number(s, value, unit)) {
    throw UserError(fmt::format("{} '{}' is not a size; write bytes with a unit, e.g. 600MiB or 2GB",
                                what, text));
  }
  double factor = unit.empty() ? 1.0 : 0.0;
  for (const Unit& u : kUnits) {
    if (unit == u.name) factor = u.factor;
  }
  if (factor == 0.0) {
    throw UserError(fmt::format("{} '{}' has unknown unit '{}'; use B, KiB, MiB, GiB, KB, MB or GB",
                                what, text, unit));
  }
  double bytes = std::round(value * factor);
  if (bytes >= 1.8e19) throw UserError(fmt::format("{} '{}' is too large", what, text));
  return static_cast<std::uint64_t>(bytes);
}

std::string format_bytes(std::uint64_t bytes) {
  const char* names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  if (u == 0) return fmt::format("{} B", bytes);
  return fmt::format("{:.1f} {}", v, names[u]);
}

std::string format_bytes_signed(std::int64_t bytes) {
  if (bytes < 0) return "-" + format_bytes(static_cast<std::uint64_t>(-bytes));
  return "+" + format_bytes(static_cast<std::uint64_t>(bytes));
}

Budget Budget::fraction(double f) {
  if (!(f > 0.0 && f <= 1.0)) {
    throw UserError(fmt::format(
        "budget fraction {:g} is outside (0, 1]; it is a fraction of the no-checkpoint peak "
        "(for bytes use Budget::bytes, or a unit: 600MiB)",
        f));
  }
  Budget b;
  b.is_fraction_ = true;
  b.fraction_ = f;
  return b;
}

Budget Budget::bytes(std::uint64_t n) {
  if (n == 0) throw UserError("a budget of zero bytes cannot hold anything; give a positive size");
  Budget b;
  b.bytes_ = n;
  return b;
}

std::uint64_t Budget::resolve(std::uint64_t peak_bytes) const {
  if (!is_fraction_) return bytes_;
  // Peaks near 2^64 round up to 2^64 as doubles, which no uint64 holds; a fraction of at
  // most 1 is at most the peak itself.
  const double b = std::floor(fraction_ * static_cast<double>(peak_bytes));
  return b >= static_cast<double>(peak_bytes) ? peak_bytes : static_cast<std::uint64_t>(b);
}

std::string Budget::describe() const {
  if (is_fraction_) return fmt::format("{:g} of the no-checkpoint peak", fraction_);
  return format_bytes(bytes_);
}

Budget Budget::parse(std::string_view text) {
  std::string_view s = trim(text);
  double value = 0;
  std::string_view unit;
  if (!split_number(s, value, unit)) {
    throw UserError(fmt::format(
        "budget '{}' is neither bytes with a unit (600MiB) nor a fraction of the no-checkpoint "
        "peak in (0, 1] (0.5)",
        text));
  }
  if (unit.empty()) {
    if (!(value > 0.0 && value <= 1.0)) {
      throw UserError(fmt::format(
          "budget fraction {} is outside (0, 1]; it is a fraction of the no-checkpoint peak "
          "(for bytes add a unit, e.g. 600MiB)",
          text));
    }
    return fraction(value);
  }
  const std::uint64_t n = parse_bytes(s, "budget");
  if (n == 0) throw UserError(fmt::format("budget '{}' is zero bytes", text));
  return bytes(n);
}

}  // namespace tidemark
