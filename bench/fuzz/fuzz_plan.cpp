// Fuzz target: plan_from_json (tidemark.plan/1), the tree helpers on what it loaded, then
// plan_to_json round trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_contract.hpp"
#include "tidemark/core/plan.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tidemark;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Plan p;
  if (!fuzz::loads<FormatError>([&] { p = plan_from_json(text, "fuzz.json"); }, "fuzz.json: ")) return 0;
  // The reader validated the tree: validating again must pass, and its top-level parts
  // must tile [0, layers).
  if (!fuzz::loads<FormatError>([&] { validate_plan_tree(p.root, p.stages, "loaded"); }, "loaded")) {
    fuzz::bug("a loaded plan fails validate_plan_tree");
  }
  int at = 0;
  for (const PlanNode* n : flatten_sequence(p.root)) {
    if (n->begin != at || n->end <= n->begin) fuzz::bug("flattened parts of a loaded plan do not tile it");
    at = n->end;
  }
  if (at != p.stages) fuzz::bug("flattened parts of a loaded plan do not cover every stage");
  if (describe(p.root).empty()) fuzz::bug("describe() of a loaded plan is empty");
  fuzz::round_trips(p, plan_to_json, plan_from_json);
  return 0;
}
