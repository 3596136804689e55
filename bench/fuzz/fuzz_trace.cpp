// Fuzz target: trace_from_json (tidemark.trace/1; the simdjson fast reader and its
// reference fallback), the Chrome export of what it loaded, then trace_to_json round trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_contract.hpp"
#include "tidemark/core/trace.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tidemark;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Trace t;
  if (!fuzz::loads<FormatError>([&] { t = trace_from_json(text, "fuzz.json"); }, "fuzz.json: ")) return 0;
  const size_t n = t.memory.size();
  if (t.memory.total.size() != n) fuzz::bug("loaded memory columns differ in length");
  for (const auto& column : t.memory.category) {
    if (column.size() != n) fuzz::bug("loaded memory columns differ in length");
  }
  for (const Span& s : t.spans) {
    if (s.stage < 0 || s.stage >= static_cast<int>(t.stages.size())) fuzz::bug("loaded span outside the stages");
    if (s.end_us < s.start_us) fuzz::bug("loaded span ends before it starts");
  }
  // `tidemark export` runs this on any trace the reader accepts.
  if (trace_to_chrome_json(t).empty()) fuzz::bug("empty Chrome export");
  fuzz::round_trips(t, trace_to_json, trace_from_json);
  return 0;
}
