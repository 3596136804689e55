#pragma once
// Byte quantities with units ("600MiB", "1.5GB") and memory budgets, which are either
// bytes or a fraction of a profile's measured no-checkpoint peak ("0.5").
#include <cstdint>
#include <string>
#include <string_view>

namespace tidemark {

// Parses "512", "512B", "4KiB", "1.5GiB", "600MB" (SI units are powers of 1000, IEC of
// 1024). Throws UserError naming `what` on anything else, negative or overflowing.
std::uint64_t parse_bytes(std::string_view text, std::string_view what = "size");

// "812.4 MiB": binary units, one decimal, for people.
std::string format_bytes(std::uint64_t bytes);
std::string format_bytes_signed(std::int64_t bytes);

// A memory budget: bytes, or a fraction of a profile's no-checkpoint peak.
//   Budget::fraction(0.5)   Budget::bytes(300 << 20)   Budget::parse("600MiB")
class Budget {
 public:
  // f in (0, 1]; throws UserError otherwise.
  static Budget fraction(double f);
  // b > 0; throws UserError otherwise.
  static Budget bytes(std::uint64_t b);
  // A number without a unit is a fraction of the no-checkpoint peak and must lie in (0, 1];
  // bytes need a unit ("600MiB"). Throws UserError otherwise.
  static Budget parse(std::string_view text);

  bool is_fraction() const { return is_fraction_; }
  double fraction_of_peak() const { return fraction_; }  // when is_fraction()
  std::uint64_t byte_count() const { return bytes_; }    // when !is_fraction()

  // Bytes for a profile whose measured no-checkpoint peak is `peak_bytes`.
  std::uint64_t resolve(std::uint64_t peak_bytes) const;
  std::string describe() const;

 private:
  bool is_fraction_ = false;
  double fraction_ = 0;
  std::uint64_t bytes_ = 0;
};

}  // namespace tidemark
