// Fuzz target: profile_from_json (tidemark.profile/1), then profile_to_json round trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_contract.hpp"
#include "tidemark/core/profile.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tidemark;
  const std::string text(reinterpret_cast<const char*>(data), size);
  ChainProfile p;
  if (!fuzz::loads<FormatError>([&] { p = profile_from_json(text, "fuzz.json"); }, "fuzz.json: ")) return 0;
  if (p.stages.empty()) fuzz::bug("a loaded profile has no stages");
  if (!(p.fixed_ms() >= 0)) fuzz::bug("fixed_ms() is negative or NaN");
  fuzz::round_trips(p, profile_to_json, profile_from_json);
  return 0;
}
