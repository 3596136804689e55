#include "tidemark/core/trace.hpp"

#include <fmt/format.h>

#include "config_json.hpp"
#include "tidemark/core/files.hpp"

namespace tidemark {

using detail::json;
using detail::JsonView;

const char* to_string(Phase p) {
  switch (p) {
    case Phase::Forward: return "forward";
    case Phase::Backward: return "backward";
    case Phase::Recompute: return "recompute";
  }
  return "?";
}

const char* to_string(MemoryCategory c) {
  switch (c) {
    case MemoryCategory::Parameter: return "parameter";
    case MemoryCategory::Gradient: return "gradient";
    case MemoryCategory::OptimizerState: return "optimizer_state";
    case MemoryCategory::Input: return "input";
    case MemoryCategory::Activation: return "activation";
    case MemoryCategory::Temporary: return "temporary";
  }
  return "?";
}

void MemoryTimeline::push(std::int64_t t, const std::array<std::uint64_t, kCategoryCount>& by) {
  std::uint64_t sum = 0;
  for (int c = 0; c < kCategoryCount; ++c) {
    category[c].push_back(by[c]);
    sum += by[c];
  }
  t_us.push_back(t);
  total.push_back(sum);
}

namespace {

Phase phase_from(const JsonView& v) {
  std::string s = v.str();
  if (s == "forward") return Phase::Forward;
  if (s == "backward") return Phase::Backward;
  if (s == "recompute") return Phase::Recompute;
  v.fail(fmt::format("unknown phase \"{}\"; expected forward, backward or recompute", s));
}

template <typename T>
std::vector<T> column(const JsonView& v) {
  const json& a = v.raw();
  if (!a.is_array()) v.fail("expected an array");
  std::vector<T> out;
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const json& x = a[i];
    if constexpr (std::is_unsigned_v<T>) {
      if (!x.is_number_unsigned()) {
        if (x.is_number_integer() && x.get<long long>() >= 0) {
          out.push_back(static_cast<T>(x.get<long long>()));
          continue;
        }
        v.fail(fmt::format("element {} is not a non-negative integer", i));
      }
      out.push_back(x.get<T>());
    } else {
      if (!x.is_number_integer()) v.fail(fmt::format("element {} is not an integer", i));
      out.push_back(x.get<T>());
    }
  }
  return out;
}

}  // namespace

std::string trace_to_json(const Trace& t) {
  json doc = detail::document_header(kTraceSchema, kTraceVersion);
  doc["config"] = detail::config_to_json(t.config);
  doc["mode"] = t.mode;
  if (!t.solver.empty()) doc["solver"] = t.solver;
  if (t.budget_bytes) doc["budget_bytes"] = *t.budget_bytes;
  if (t.predicted_peak_bytes) doc["predicted_peak_bytes"] = *t.predicted_peak_bytes;
  doc["peak_bytes"] = t.peak_bytes;
  json stages = json::array();
  for (const auto& s : t.stages) {
    stages.push_back(json{{"name", s.name}, {"kind", s.kind}, {"action", s.action},
                          {"saved_bytes", s.saved_bytes}});
  }
  doc["stages"] = std::move(stages);
  json spans = json::array();
  for (const auto& s : t.spans) {
    spans.push_back(json{{"stage", s.stage}, {"phase", to_string(s.phase)}, {"step", s.step},
                         {"start_us", s.start_us}, {"end_us", s.end_us}});
  }
  doc["spans"] = std::move(spans);
  json steps = json::array();
  for (const auto& s : t.steps) {
    steps.push_back(json{{"step", s.step}, {"start_us", s.start_us}, {"end_us", s.end_us},
                         {"peak_bytes", s.peak_bytes}});
  }
  doc["steps"] = std::move(steps);
  json mem = json::object();
  mem["t_us"] = t.memory.t_us;
  mem["total"] = t.memory.total;
  for (int c = 0; c < kCategoryCount; ++c) {
    mem[to_string(kAllCategories[c])] = t.memory.category[c];
  }
  doc["memory"] = std::move(mem);
  return doc.dump() + "\n";
}

Trace trace_from_json(const std::string& text, const std::string& source) {
  json doc = detail::parse_document(text, source, kTraceSchema, kTraceVersion);
  JsonView root(doc, "", source);
  Trace t;
  t.config = detail::config_from_json(root.at("config"));
  t.mode = root.at("mode").str();
  if (auto s = root.get("solver")) t.solver = s->str();
  if (auto b = root.get("budget_bytes")) t.budget_bytes = b->u64();
  if (auto p = root.get("predicted_peak_bytes")) t.predicted_peak_bytes = p->u64();
  t.peak_bytes = root.at("peak_bytes").u64();
  for (const auto& s : root.items("stages")) {
    TraceStage st;
    st.name = s.at("name").str();
    st.kind = s.at("kind").str();
    if (auto a = s.get("action")) st.action = a->str();
    if (auto b = s.get("saved_bytes")) st.saved_bytes = b->u64();
    t.stages.push_back(std::move(st));
  }
  const int n_stages = static_cast<int>(t.stages.size());
  for (const auto& s : root.items("spans")) {
    Span sp;
    std::int64_t stage = s.at("stage").i64();
    if (stage < 0 || stage >= n_stages) {
      s.at("stage").fail(fmt::format("stage {} is outside the {} stages of this trace", stage, n_stages));
    }
    sp.stage = static_cast<int>(stage);
    sp.phase = phase_from(s.at("phase"));
    sp.step = static_cast<int>(s.at("step").i64());
    sp.start_us = s.at("start_us").i64();
    sp.end_us = s.at("end_us").i64();
    if (sp.end_us < sp.start_us) s.fail("ends before it starts");
    t.spans.push_back(sp);
  }
  for (const auto& s : root.items("steps")) {
    StepMark m;
    m.step = static_cast<int>(s.at("step").i64());
    m.start_us = s.at("start_us").i64();
    m.end_us = s.at("end_us").i64();
    m.peak_bytes = s.at("peak_bytes").u64();
    if (m.end_us < m.start_us) s.fail("ends before it starts");
    t.steps.push_back(m);
  }
  JsonView mem = root.at("memory");
  t.memory.t_us = column<std::int64_t>(mem.at("t_us"));
  t.memory.total = column<std::uint64_t>(mem.at("total"));
  const size_t n = t.memory.t_us.size();
  if (t.memory.total.size() != n) mem.at("total").fail("length differs from t_us");
  for (int c = 0; c < kCategoryCount; ++c) {
    const char* name = to_string(kAllCategories[c]);
    t.memory.category[c] = column<std::uint64_t>(mem.at(name));
    if (t.memory.category[c].size() != n) mem.at(name).fail("length differs from t_us");
  }
  for (size_t i = 1; i < n; ++i) {
    if (t.memory.t_us[i] < t.memory.t_us[i - 1]) {
      mem.at("t_us").fail(fmt::format("time goes backwards at sample {}", i));
    }
  }
  return t;
}

Trace read_trace(const std::string& path) {
  return trace_from_json(read_text_file(path, "trace"), path);
}

void write_trace(const std::string& path, const Trace& trace) {
  write_file_atomic(path, trace_to_json(trace), "trace");
}

std::string trace_to_chrome_json(const Trace& t) {
  // pid 1: stages, one tid per stage; pid 2: memory counters and step markers.
  json events = json::array();
  events.push_back(json{{"name", "process_name"}, {"ph", "M"}, {"pid", 1},
                        {"args", json{{"name", "tidemark stages"}}}});
  events.push_back(json{{"name", "process_name"}, {"ph", "M"}, {"pid", 2},
                        {"args", json{{"name", "tidemark memory"}}}});
  for (size_t i = 0; i < t.stages.size(); ++i) {
    events.push_back(json{{"name", "thread_name"}, {"ph", "M"}, {"pid", 1}, {"tid", i},
                          {"args", json{{"name", t.stages[i].name}}}});
    events.push_back(json{{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", 1}, {"tid", i},
                          {"args", json{{"sort_index", i}}}});
  }
  for (const auto& s : t.spans) {
    const std::string& name = s.stage < static_cast<int>(t.stages.size()) ? t.stages[s.stage].name
                                                                           : std::string("stage");
    events.push_back(json{{"name", fmt::format("{} {}", name, to_string(s.phase))},
                          {"cat", to_string(s.phase)},
                          {"ph", "X"},
                          {"pid", 1},
                          {"tid", s.stage},
                          {"ts", s.start_us},
                          {"dur", s.end_us - s.start_us},
                          {"args", json{{"step", s.step}}}});
  }
  for (const auto& s : t.steps) {
    events.push_back(json{{"name", fmt::format("step {}", s.step)}, {"cat", "step"}, {"ph", "X"},
                          {"pid", 2}, {"tid", 0}, {"ts", s.start_us},
                          {"dur", s.end_us - s.start_us},
                          {"args", json{{"peak_bytes", s.peak_bytes}}}});
  }
  for (size_t i = 0; i < t.memory.size(); ++i) {
    json args = json::object();
    for (int c = 0; c < kCategoryCount; ++c) {
      args[to_string(kAllCategories[c])] = t.memory.category[c][i];
    }
    events.push_back(json{{"name", "memory (bytes)"}, {"ph", "C"}, {"pid", 2}, {"ts", t.memory.t_us[i]},
                          {"args", std::move(args)}});
  }
  json doc{{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
  return doc.dump() + "\n";
}

}  // namespace tidemark
