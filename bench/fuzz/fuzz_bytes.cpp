// Fuzz target: parse_bytes and Budget::parse (the --budget flag and every size the CLI
// takes), and what a parsed budget resolves to.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

#include "fuzz_contract.hpp"
#include "tidemark/core/bytes.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tidemark;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::uint64_t bytes = 0;
  if (fuzz::loads<UserError>([&] { bytes = parse_bytes(text, "fuzz size"); }, "fuzz size ")) {
    if (format_bytes(bytes).empty()) fuzz::bug("format_bytes gave nothing");
  }
  Budget b;
  if (!fuzz::loads<UserError>([&] { b = Budget::parse(text); }, "budget ")) return 0;
  if (b.describe().empty()) fuzz::bug("Budget::describe gave nothing");
  if (b.is_fraction()) {
    if (!(b.fraction_of_peak() > 0 && b.fraction_of_peak() <= 1)) fuzz::bug("a fraction budget outside (0, 1]");
    // A fraction of a peak is at most that peak, whatever the peak (profiles carry any u64).
    for (std::uint64_t peak : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{1} << 53,
                               (std::uint64_t{1} << 53) + 1, std::numeric_limits<std::uint64_t>::max()}) {
      if (b.resolve(peak) > peak) fuzz::bug("a fraction budget resolves above the peak");
    }
  } else {
    if (b.byte_count() == 0) fuzz::bug("a byte budget of zero");
    if (b.resolve(12345) != b.byte_count()) fuzz::bug("a byte budget depends on the peak");
  }
  return 0;
}
