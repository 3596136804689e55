#include "tidemark/core/report.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "config_json.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/core/files.hpp"

namespace tidemark {

using detail::json;
using detail::JsonView;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string report_to_json(const Report& r) {
  json doc = detail::document_header(kReportSchema, kReportVersion);
  doc["command"] = r.command;
  doc["mode"] = r.mode;
  if (!r.solver.empty()) doc["solver"] = r.solver;
  doc["config"] = detail::config_to_json(r.config);
  doc["torch_version"] = r.torch_version;
  doc["threads"] = r.threads;
  doc["steps"] = r.steps;
  doc["losses"] = r.losses;
  doc["final_loss"] = r.final_loss;
  doc["peak_bytes"] = r.peak_bytes;
  doc["step_ms_median"] = r.step_ms_median;
  doc["step_ms"] = r.step_ms;
  doc["step_peak_bytes"] = r.step_peak_bytes;
  doc["recomputes"] = r.recomputes;
  if (r.budget_bytes) doc["budget_bytes"] = *r.budget_bytes;
  if (r.world_size > 1 || !r.rank_peak_bytes.empty()) {
    doc["world_size"] = r.world_size;
    doc["zero"] = r.zero;
    doc["rank_peak_bytes"] = r.rank_peak_bytes;
    doc["rank_floor_bytes"] = r.rank_floor_bytes;
    doc["comm_wait_ms"] = r.comm_wait_ms;
  }
  if (r.predicted) {
    doc["predicted"] = json{{"peak_bytes", r.predicted->peak_bytes},
                            {"step_ms", r.predicted->step_ms},
                            {"recompute_ms", r.predicted->recompute_ms}};
    // Side by side, so a reader does not have to know where each number lives.
    doc["measured"] = json{{"peak_bytes", r.peak_bytes}, {"step_ms", r.step_ms_median}};
  }
  return doc.dump(1) + "\n";
}

Report report_from_json(const std::string& text, const std::string& source) {
  json doc = detail::parse_document(text, source, kReportSchema, kReportVersion);
  JsonView root(doc, "", source);
  Report r;
  if (auto c = root.get("command")) r.command = c->str();
  r.mode = root.at("mode").str();
  if (auto s = root.get("solver")) r.solver = s->str();
  r.config = detail::config_from_json(root.at("config"));
  if (auto t = root.get("torch_version")) r.torch_version = t->str();
  if (auto t = root.get("threads")) r.threads = static_cast<int>(t->i64());
  r.steps = static_cast<int>(root.at("steps").i64());
  for (const auto& l : root.items("losses")) r.losses.push_back(l.number());
  r.final_loss = root.at("final_loss").number();
  r.peak_bytes = root.at("peak_bytes").u64();
  r.step_ms_median = root.at("step_ms_median").non_negative();
  if (auto s = root.get("step_ms")) {
    for (const auto& x : s->items()) r.step_ms.push_back(x.non_negative());
  }
  if (auto s = root.get("step_peak_bytes")) {
    for (const auto& x : s->items()) r.step_peak_bytes.push_back(x.u64());
  }
  if (auto x = root.get("recomputes")) r.recomputes = x->u64();
  if (auto b = root.get("budget_bytes")) r.budget_bytes = b->u64();
  if (auto w = root.get("world_size")) {
    const std::int64_t n = w->i64();
    if (n < 1 || n > 65536) throw FormatError(fmt::format("{}: world_size {} is not in [1, 65536]", source, n));
    r.world_size = static_cast<int>(n);
  }
  if (auto z = root.get("zero")) {
    const std::int64_t k = z->i64();
    if (k < 0 || k > 3) throw FormatError(fmt::format("{}: zero {} is not a ZeRO stage (0 to 3)", source, k));
    r.zero = static_cast<int>(k);
  }
  if (auto s = root.get("rank_floor_bytes")) {
    for (const auto& x : s->items()) r.rank_floor_bytes.push_back(x.u64());
  }
  if (auto s = root.get("rank_peak_bytes")) {
    for (const auto& x : s->items()) r.rank_peak_bytes.push_back(x.u64());
  }
  if (auto s = root.get("comm_wait_ms")) {
    for (const auto& x : s->items()) r.comm_wait_ms.push_back(x.non_negative());
  }
  if (auto p = root.get("predicted")) {
    Prediction pr;
    pr.peak_bytes = p->at("peak_bytes").u64();
    pr.step_ms = p->at("step_ms").non_negative();
    if (auto rc = p->get("recompute_ms")) pr.recompute_ms = rc->non_negative();
    r.predicted = pr;
  }
  return r;
}

Report read_report(const std::string& path) {
  return report_from_json(read_text_file(path, "report"), path);
}

void write_report(const std::string& path, const Report& report) {
  write_file_atomic(path, report_to_json(report), "report");
}

}  // namespace tidemark
