// Fuzz target: report_from_json (tidemark.report/1), then report_to_json round trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_contract.hpp"
#include "tidemark/core/report.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tidemark;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Report r;
  if (!fuzz::loads<FormatError>([&] { r = report_from_json(text, "fuzz.json"); }, "fuzz.json: ")) return 0;
  fuzz::round_trips(r, report_to_json, report_from_json);
  return 0;
}
