// tidemark.trace/1 reading and writing.
//
// Sections:
//   [1] names of phases and categories, MemoryTimeline::push
//   [2] writer (nlohmann DOM; traces are written once, so simple beats fast here)
//   [3] reference reader: nlohmann DOM + JsonView, the one source of error messages
//   [4] fast reader: spans and memory columns with simdjson on demand
//   [5] trace_from_json, read_trace, write_trace
//   [6] Chrome trace event export
#include "tidemark/core/trace.hpp"

#include <climits>
#include <cstring>
#include <fmt/format.h>
#include <simdjson.h>
#include <string_view>

#include "config_json.hpp"
#include "file_buffer.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/core/files.hpp"

namespace tidemark {

using detail::json;
using detail::JsonView;

// ---- [1] Names ------------------------------------------------------------------------------

const char* to_string(Phase p) {
  switch (p) {
    case Phase::Forward: return "forward";
    case Phase::Backward: return "backward";
    case Phase::Recompute: return "recompute";
    case Phase::CopyOut: return "copy-out";
    case Phase::CopyIn: return "copy-in";
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

void MemoryTimeline::push(std::int64_t t, const std::array<std::uint64_t, kCategoryCount>& by, std::uint64_t host_bytes) {
  std::uint64_t sum = 0;
  for (int c = 0; c < kCategoryCount; ++c) {
    category[c].push_back(by[c]);
    sum += by[c];
  }
  // The host column starts with the first sample that has host bytes, zeros before it.
  if (host_bytes > 0 && host.empty()) host.assign(t_us.size(), 0);
  if (!host.empty()) host.push_back(host_bytes);
  t_us.push_back(t);
  total.push_back(sum);
}

// ---- [2] Writer -----------------------------------------------------------------------------

std::string trace_to_json(const Trace& t) {
  json doc = detail::document_header(kTraceSchema, kTraceVersion);
  doc["model"] = t.model;
  if (t.model == "gpt") doc["config"] = detail::config_to_json(t.config);
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
  if (t.memory.has_host()) mem["host"] = t.memory.host;
  doc["memory"] = std::move(mem);
  return doc.dump() + "\n";
}

// ---- [3] Reference reader ---------------------------------------------------------------
// The nlohmann DOM + JsonView reader. It reads the small members (config, stages, steps)
// always, and the whole text when the fast reader meets anything it does not take, so that
// every error message comes from this one place (and detail::parse_json for syntax).
namespace {

Phase phase_from(const JsonView& v) {
  std::string s = v.str();
  if (s == "forward") return Phase::Forward;
  if (s == "backward") return Phase::Backward;
  if (s == "recompute") return Phase::Recompute;
  if (s == "copy-out") return Phase::CopyOut;
  if (s == "copy-in") return Phase::CopyIn;
  v.fail(fmt::format("unknown phase \"{}\"; expected forward, backward, recompute, copy-out or copy-in", s));
}

// Times are microseconds from the trace start. Beyond +-1e18 (31,700 years) a time is
// corrupt; refusing it keeps every duration and difference of two times within int64, for
// the Chrome export here and the viewer. The fast reader leaves such times to this reader.
constexpr std::int64_t kTimeLimitUs = 1'000'000'000'000'000'000;

bool time_in_range(std::int64_t t) { return t > -kTimeLimitUs && t < kTimeLimitUs; }

std::int64_t time_us(const JsonView& v) {
  const std::int64_t t = v.i64();
  if (!time_in_range(t)) v.fail(fmt::format("time {} us is out of range (|t| < 1e18)", t));
  return t;
}

template <typename T>
std::vector<T> reference_column(const JsonView& v) {
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
      if (x.is_number_unsigned() && x.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
        v.fail(fmt::format("element {} is out of range", i));
      }
      if (!time_in_range(x.get<std::int64_t>())) {
        v.fail(fmt::format("element {} is out of range: times are microseconds, |t| < 1e18", i));
      }
      out.push_back(x.get<T>());
    }
  }
  return out;
}

std::vector<TraceStage> reference_stages(const JsonView& v) {
  std::vector<TraceStage> out;
  for (const auto& s : v.items()) {
    TraceStage st;
    st.name = s.at("name").str();
    st.kind = s.at("kind").str();
    if (auto a = s.get("action")) st.action = a->str();
    if (auto b = s.get("saved_bytes")) st.saved_bytes = b->u64();
    out.push_back(std::move(st));
  }
  return out;
}

std::vector<Span> reference_spans(const JsonView& v, int n_stages) {
  std::vector<Span> out;
  for (const auto& s : v.items()) {
    Span sp;
    std::int64_t stage = s.at("stage").i64();
    if (stage < 0 || stage >= n_stages) {
      s.at("stage").fail(fmt::format("stage {} is outside the {} stages of this trace", stage, n_stages));
    }
    sp.stage = static_cast<int>(stage);
    sp.phase = phase_from(s.at("phase"));
    sp.step = static_cast<int>(s.at("step").i64());
    sp.start_us = time_us(s.at("start_us"));
    sp.end_us = time_us(s.at("end_us"));
    if (sp.end_us < sp.start_us) s.fail("ends before it starts");
    out.push_back(sp);
  }
  return out;
}

std::vector<StepMark> reference_steps(const JsonView& v) {
  std::vector<StepMark> out;
  for (const auto& s : v.items()) {
    StepMark m;
    m.step = static_cast<int>(s.at("step").i64());
    m.start_us = time_us(s.at("start_us"));
    m.end_us = time_us(s.at("end_us"));
    m.peak_bytes = s.at("peak_bytes").u64();
    if (m.end_us < m.start_us) s.fail("ends before it starts");
    out.push_back(m);
  }
  return out;
}

void reference_memory(const JsonView& mem, MemoryTimeline& out) {
  out.t_us = reference_column<std::int64_t>(mem.at("t_us"));
  out.total = reference_column<std::uint64_t>(mem.at("total"));
  for (int c = 0; c < kCategoryCount; ++c) {
    out.category[c] = reference_column<std::uint64_t>(mem.at(to_string(kAllCategories[c])));
  }
  if (auto h = mem.get("host")) out.host = reference_column<std::uint64_t>(*h);
}

// Spans and memory columns as the fast reader ([4]) read them.
struct FastColumns {
  std::vector<Span> spans;
  MemoryTimeline memory;
};

// Thrown by the fast reader for anything it leaves to the reference reader.
struct NotFast {};

// The trace in `doc`: the whole document, or, with `fast`, the document less its spans and
// memory, which `fast` holds instead. The checks run in the same order either way, so a
// document is refused with the same message whichever reader read its columns.
Trace trace_from_dom(const json& doc, const std::string& source, FastColumns* fast) {
  detail::check_header(doc, source, kTraceSchema, kTraceVersion);
  const JsonView root(doc, "", source);
  Trace t;
  if (auto m = root.get("model")) t.model = m->str();
  if (t.model == "gpt") t.config = detail::config_from_json(root.at("config"));
  t.mode = root.at("mode").str();
  if (auto s = root.get("solver")) t.solver = s->str();
  if (auto b = root.get("budget_bytes")) t.budget_bytes = b->u64();
  if (auto p = root.get("predicted_peak_bytes")) t.predicted_peak_bytes = p->u64();
  t.peak_bytes = root.at("peak_bytes").u64();
  t.stages = reference_stages(root.at("stages"));
  const int n_stages = static_cast<int>(t.stages.size());
  if (fast) {
    for (const Span& s : fast->spans) {
      if (s.stage >= n_stages) throw NotFast{};
    }
    t.spans = std::move(fast->spans);
  } else {
    t.spans = reference_spans(root.at("spans"), n_stages);
  }
  t.steps = reference_steps(root.at("steps"));
  if (fast) {
    t.memory = std::move(fast->memory);
  } else {
    reference_memory(root.at("memory"), t.memory);
  }
  auto fail = [&](const char* column, const std::string& problem) {
    throw FormatError(fmt::format("{}: memory.{}: {}", source, column, problem));
  };
  const size_t n = t.memory.t_us.size();
  if (t.memory.total.size() != n) fail("total", "length differs from t_us");
  for (int c = 0; c < kCategoryCount; ++c) {
    if (t.memory.category[c].size() != n) fail(to_string(kAllCategories[c]), "length differs from t_us");
  }
  if (t.memory.has_host() && t.memory.host.size() != n) fail("host", "length differs from t_us");
  for (size_t i = 1; i < n; ++i) {
    if (t.memory.t_us[i] < t.memory.t_us[i - 1]) fail("t_us", fmt::format("time goes backwards at sample {}", i));
  }
  return t;
}

}  // namespace

// ---- [4] Fast reader: simdjson on demand ----------------------------------------------------
// Note [Fast trace reading]
// A trace of 1,000,000 samples is about 80 MB of JSON; nlohmann's DOM parse alone took
// 0.8-1.9 s on it. The fast reader reads the spans and the memory columns straight into
// their vectors with simdjson's on-demand API, and every other member (small: the header,
// config, stages, steps, and any member it does not know) into a small nlohmann document for
// the reference reader above, which thus checks them and words every message.
// It accepts exactly what nlohmann accepts, or leaves the document to the reference reader:
// - simdjson checks UTF-8 and the string boundaries of the whole text before iterating, and
//   the structure (commas, colons, brackets) around every value it reads. It reads all of
//   them: nothing is skipped, because on demand a skipped value is only counted through,
//   not checked.
// - Scalars outside the hot columns, and member names with escapes, are parsed by nlohmann
//   from their raw text; in the hot columns only plain integers and the three phase names
//   written without escapes are taken. Anything else (a fraction, 1e400, an escape, a time
//   beyond 1e18 us, a missing field, a simdjson error) throws NotFast, and the reference
//   reader reads the whole text again and reports the problem, or reads what was only
//   unusual. tests/core/test_trace_reader.cpp holds both paths to that.
namespace {

namespace od = simdjson::ondemand;

void ok(simdjson::error_code e) {
  if (e != simdjson::SUCCESS) throw NotFast{};
}

// The value of a simdjson result, or NotFast.
template <typename T, typename Result>
T got(Result&& r) {
  T out{};
  ok(std::forward<Result>(r).get(out));
  return out;
}

// A member name as nlohmann reads it. Without escapes it is its text (UTF-8 checked by
// simdjson); nlohmann decodes the rest. The scan stops at a control character, which JSON
// forbids in strings, and so also at the zero padding after the text.
std::string_view key_of(od::field& f, std::string& scratch) {
  const char* begin = f.key().raw();
  const char* p = begin;
  bool escaped = false;
  for (; *p != '"'; ++p) {
    if (static_cast<unsigned char>(*p) < 0x20) throw NotFast{};
    if (*p == '\\') escaped = true, ++p;
  }
  if (!escaped) return {begin, static_cast<size_t>(p - begin)};
  json k = json::parse(begin - 1, p + 1, nullptr, false);
  if (!k.is_string()) throw NotFast{};
  scratch = k.get<std::string>();
  return scratch;
}

// Any value, checked by walking all of it, as nlohmann reads it. Nesting deeper than any
// trace has is left to nlohmann, whose parser does not recurse.
json to_dom(od::value v, std::string& scratch, int depth = 0) {
  const auto type = got<od::json_type>(v.type());
  if (depth > 64) throw NotFast{};
  if (type == od::json_type::object) {
    json j = json::object();
    for (auto member : got<od::object>(v.get_object())) {
      auto f = got<od::field>(std::move(member));
      std::string key(key_of(f, scratch));
      j[key] = to_dom(f.value(), scratch, depth + 1);
    }
    return j;
  }
  if (type == od::json_type::array) {
    json j = json::array();
    for (auto element : got<od::array>(v.get_array())) j.push_back(to_dom(got<od::value>(element), scratch, depth + 1));
    return j;
  }
  // nlohmann reads the scalar from its text; a getter then moves past it, for on demand
  // checks what follows only a value that was read, not one that was looked at.
  json j = json::parse(v.raw_json_token(), nullptr, false);
  if (j.is_discarded()) throw NotFast{};
  if (type == od::json_type::string) ok(v.get_raw_json_string().error());
  if (type == od::json_type::number) ok(v.get_double().error());
  if (type == od::json_type::boolean) ok(v.get_bool().error());
  if (type == od::json_type::null && !got<bool>(v.is_null())) throw NotFast{};
  return j;
}

Phase phase_of(od::value& v) {
  // The text after the opening quote; simdjson found the closing one.
  const char* s = got<od::raw_json_string>(v.get_raw_json_string()).raw();
  if (std::strncmp(s, "forward\"", 8) == 0) return Phase::Forward;
  if (std::strncmp(s, "backward\"", 9) == 0) return Phase::Backward;
  if (std::strncmp(s, "recompute\"", 10) == 0) return Phase::Recompute;
  if (std::strncmp(s, "copy-out\"", 9) == 0) return Phase::CopyOut;
  if (std::strncmp(s, "copy-in\"", 8) == 0) return Phase::CopyIn;
  throw NotFast{};
}

// An array, and its vector cleared and sized for it: growing a vector of a million copies
// it ~20 times.
template <typename T>
od::array sized_array(od::value& v, std::vector<T>& out) {
  auto a = got<od::array>(v.get_array());
  const auto n = got<size_t>(a.count_elements());
  out.clear();
  out.reserve(n);
  detail::advise_huge_pages(out.data(), n * sizeof(T));
  return a;
}

template <typename T>
void fast_column(od::value& v, std::vector<T>& out) {
  for (auto element : sized_array(v, out)) {
    if constexpr (std::is_unsigned_v<T>) {
      out.push_back(got<std::uint64_t>(element.get_uint64()));
    } else {
      out.push_back(got<std::int64_t>(element.get_int64()));
      if (!time_in_range(out.back())) throw NotFast{};
    }
  }
}

void fast_memory(od::value& v, MemoryTimeline& out, std::string& scratch) {
  unsigned seen = 0;  // a bit per category, then total, then t_us
  for (auto member : got<od::object>(v.get_object())) {
    auto f = got<od::field>(std::move(member));
    const std::string_view key = key_of(f, scratch);
    int c = 0;
    while (c < kCategoryCount && key != to_string(kAllCategories[c])) ++c;
    if (c < kCategoryCount || key == "total") {
      fast_column(f.value(), c < kCategoryCount ? out.category[c] : out.total);
    } else if (key == "t_us") {
      fast_column(f.value(), out.t_us);
      ++c;
    } else if (key == "host") {
      fast_column(f.value(), out.host);  // optional: not in `seen`
      continue;
    } else {
      to_dom(f.value(), scratch);  // checked, then dropped as the reference reader drops it
      continue;
    }
    seen |= 1u << c;
  }
  if (seen != (4u << kCategoryCount) - 1) throw NotFast{};
}

void fast_spans(od::value& v, std::vector<Span>& out, std::string& scratch) {
  for (auto element : sized_array(v, out)) {
    Span sp;
    std::int64_t stage = -1, step = 0;
    unsigned seen = 0;
    for (auto member : got<od::object>(element.get_object())) {
      auto f = got<od::field>(std::move(member));
      const std::string_view key = key_of(f, scratch);
      od::value& x = f.value();
      if (key == "stage") {
        ok(x.get_int64().get(stage));
        seen |= 1;
      } else if (key == "phase") {
        sp.phase = phase_of(x);
        seen |= 2;
      } else if (key == "step") {
        ok(x.get_int64().get(step));
        seen |= 4;
      } else if (key == "start_us") {
        ok(x.get_int64().get(sp.start_us));
        seen |= 8;
      } else if (key == "end_us") {
        ok(x.get_int64().get(sp.end_us));
        seen |= 16;
      } else {
        to_dom(x, scratch);
      }
    }
    if (seen != 31 || stage < 0 || stage > INT32_MAX || !time_in_range(sp.start_us) || !time_in_range(sp.end_us) ||
        sp.end_us < sp.start_us) {
      throw NotFast{};
    }
    sp.stage = static_cast<int>(stage);  // checked against the stages in trace_from_dom
    sp.step = static_cast<int>(step);    // as reference_spans converts it
    out.push_back(sp);
  }
}

// The top-level members but spans and memory into `rest`, those two into `fast`.
void read_fast(simdjson::padded_string_view text, json& rest, FastColumns& fast) {
  od::parser parser;
  if (text.length() >= (8u << 20)) {
    // simdjson's index of the text (4 bytes per value, comma, bracket...) is new[]ed memory
    // it lets us neither provide nor advise. Its 4 KiB page faults were more than the whole
    // old load (300 ms for an 80 MB trace); its new mappings get the advice here instead.
    const detail::NewMappings fresh;
    ok(parser.allocate(text.length()));
    fresh.advise_new_mappings();
  }
  auto doc = got<od::document>(parser.iterate(text));
  std::string scratch;
  unsigned seen = 0;
  for (auto member : got<od::object>(doc.get_object())) {
    auto f = got<od::field>(std::move(member));
    const std::string_view key = key_of(f, scratch);
    if (key == "spans") {
      fast_spans(f.value(), fast.spans, scratch);
      seen |= 1;
    } else if (key == "memory") {
      fast_memory(f.value(), fast.memory, scratch);
      seen |= 2;
    } else {
      rest[std::string(key)] = to_dom(f.value(), scratch);  // a repeated name: the last wins, as in nlohmann
    }
  }
  const char* after = nullptr;  // out of bounds: nothing follows the object
  if (doc.current_location().get(after) != simdjson::OUT_OF_BOUNDS || seen != 3) throw NotFast{};
}

// ---- [5] trace_from_json, read_trace -------------------------------------------------------

// `text` must be followed by SIMDJSON_PADDING zero bytes: key_of's scan stops on them.
Trace parse_trace(simdjson::padded_string_view text, const std::string& source) {
  try {
    json rest = json::object();
    FastColumns fast;
    read_fast(text, rest, fast);
    return trace_from_dom(rest, source, &fast);
  } catch (const NotFast&) {
  }
  return trace_from_dom(detail::parse_json(std::string_view(text), source), source, nullptr);
}

}  // namespace

Trace trace_from_json(const std::string& text, const std::string& source) {
  const simdjson::padded_string padded(text);
  if (!padded.data()) return trace_from_dom(detail::parse_json(text, source), source, nullptr);  // no memory to copy
  return parse_trace(padded, source);
}

Trace read_trace(const std::string& path) {
  const detail::FileBuffer file(path, "trace", simdjson::SIMDJSON_PADDING);
  return parse_trace(simdjson::padded_string_view(file.data(), file.size(), file.capacity()), path);
}

void write_trace(const std::string& path, const Trace& trace) {
  write_file_atomic(path, trace_to_json(trace), "trace");
}

// ---- [6] Chrome trace event export ----------------------------------------------------------

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
  // Copy spans (offload) on two threads of their own after the stages: out, then in.
  const std::size_t copy_tid = t.stages.size();
  bool copies = false;
  for (const auto& s : t.spans) copies = copies || is_copy(s.phase);
  if (copies) {
    for (std::size_t i = 0; i < 2; ++i) {
      events.push_back(json{{"name", "thread_name"}, {"ph", "M"}, {"pid", 1}, {"tid", copy_tid + i},
                            {"args", json{{"name", i == 0 ? "copies to host" : "copies from host"}}}});
      events.push_back(json{{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", 1}, {"tid", copy_tid + i},
                            {"args", json{{"sort_index", copy_tid + i}}}});
    }
  }
  for (const auto& s : t.spans) {
    const std::string& name = s.stage < static_cast<int>(t.stages.size()) ? t.stages[s.stage].name
                                                                           : std::string("stage");
    const std::size_t tid = !is_copy(s.phase) ? static_cast<std::size_t>(s.stage)
                                              : copy_tid + (s.phase == Phase::CopyIn ? 1 : 0);
    events.push_back(json{{"name", fmt::format("{} {}", name, to_string(s.phase))},
                          {"cat", to_string(s.phase)},
                          {"ph", "X"},
                          {"pid", 1},
                          {"tid", tid},
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
    if (t.memory.has_host()) {
      events.push_back(json{{"name", "pinned host memory (bytes)"}, {"ph", "C"}, {"pid", 2}, {"ts", t.memory.t_us[i]},
                            {"args", json{{"host", t.memory.host[i]}}}});
    }
  }
  json doc{{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
  return doc.dump() + "\n";
}

}  // namespace tidemark
