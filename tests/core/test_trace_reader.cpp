// The fast tidemark.trace/1 reader against nlohmann: same values on good input, a
// FormatError (never a crash or another exception) on truncated, corrupt or odd input.
//
// Sections: helpers · round trip · truncation · mutation fuzz · specific bad input · files
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sys/stat.h>

#include "catch.hpp"
#include "common/format_error.hpp"
#include "common/text.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/core/trace.hpp"

using namespace tidemark;
using nlohmann::json;

namespace {

// ---- helpers --------------------------------------------------------------------------------

Trace small_trace() {
  Trace t;
  t.mode = "plan";
  t.solver = "optimal";
  t.budget_bytes = 5000;
  t.predicted_peak_bytes = 4800;
  t.peak_bytes = 4900;
  t.stages = {{"embedding", "embedding", "save", 10},
              {"block.0", "block", "checkpoint", 20},
              {"head", "head", "save", 5}};
  t.spans = {{0, Phase::Forward, 0, 0, 10},   {1, Phase::Forward, 0, 10, 20},
             {2, Phase::Forward, 0, 20, 25},  {2, Phase::Backward, 0, 25, 30},
             {1, Phase::Recompute, 0, 30, 38}, {1, Phase::Backward, 0, 38, 50},
             {0, Phase::Backward, 0, 50, 55}};
  t.steps = {{0, 0, 60, 4900}};
  std::int64_t time = 0;
  for (int i = 0; i < 12; ++i) {
    std::uint64_t a = static_cast<std::uint64_t>(i < 6 ? i * 100 : (12 - i) * 100);
    t.memory.push(time, {1000, static_cast<std::uint64_t>(i > 5 ? 300 : 0), 2000, 16, a, static_cast<std::uint64_t>(i % 3) * 7});
    time += 5;
  }
  return t;
}

std::string error_of(const std::string& text) {
  return testing::format_error_of([&] { trace_from_json(text, "t.json"); });
}

using testing::contains;

void check_same(const Trace& a, const Trace& b) {
  CHECK(a.mode == b.mode);
  CHECK(a.solver == b.solver);
  CHECK(a.budget_bytes == b.budget_bytes);
  CHECK(a.predicted_peak_bytes == b.predicted_peak_bytes);
  CHECK(a.peak_bytes == b.peak_bytes);
  REQUIRE(a.stages.size() == b.stages.size());
  for (size_t i = 0; i < a.stages.size(); ++i) {
    CHECK(a.stages[i].name == b.stages[i].name);
    CHECK(a.stages[i].action == b.stages[i].action);
    CHECK(a.stages[i].saved_bytes == b.stages[i].saved_bytes);
  }
  REQUIRE(a.spans.size() == b.spans.size());
  for (size_t i = 0; i < a.spans.size(); ++i) {
    CHECK(a.spans[i].stage == b.spans[i].stage);
    CHECK(a.spans[i].phase == b.spans[i].phase);
    CHECK(a.spans[i].step == b.spans[i].step);
    CHECK(a.spans[i].start_us == b.spans[i].start_us);
    CHECK(a.spans[i].end_us == b.spans[i].end_us);
  }
  REQUIRE(a.steps.size() == b.steps.size());
  CHECK(a.memory.t_us == b.memory.t_us);
  CHECK(a.memory.total == b.memory.total);
  for (int c = 0; c < kCategoryCount; ++c) CHECK(a.memory.category[c] == b.memory.category[c]);
}

// What the reader must report for a document nlohmann reads: the spans and memory columns.
void check_matches_dom(const Trace& t, const json& doc) {
  const json& spans = doc.at("spans");
  REQUIRE(t.spans.size() == spans.size());
  for (size_t i = 0; i < spans.size(); ++i) {
    CHECK(t.spans[i].stage == spans[i].at("stage").get<double>());
    CHECK(t.spans[i].start_us == spans[i].at("start_us").get<double>());
    CHECK(t.spans[i].end_us == spans[i].at("end_us").get<double>());
    CHECK(to_string(t.spans[i].phase) == spans[i].at("phase").get<std::string>());
  }
  const json& mem = doc.at("memory");
  REQUIRE(t.memory.size() == mem.at("t_us").size());
  for (size_t i = 0; i < t.memory.size(); ++i) {
    CHECK(t.memory.t_us[i] == mem.at("t_us")[i].get<std::int64_t>());
    CHECK(t.memory.category[4][i] == mem.at("activation")[i].get<std::uint64_t>());
  }
}

}  // namespace

// ---- round trip -------------------------------------------------------------------------------

TEST_CASE("trace reader round-trips what the writer writes", "[core][trace]") {
  Trace t = small_trace();
  Trace u = trace_from_json(trace_to_json(t), "t.json");
  check_same(t, u);

  // Empty columns and no spans are a valid (if dull) trace.
  Trace empty;
  empty.mode = "profile";
  Trace e = trace_from_json(trace_to_json(empty), "t.json");
  CHECK(e.memory.size() == 0);
  CHECK(e.spans.empty());
  CHECK_FALSE(e.budget_bytes.has_value());
}

TEST_CASE("trace reader takes what JSON allows: spacing, key order, escapes, extra fields, nulls",
          "[core][trace]") {
  Trace t = small_trace();
  json doc = json::parse(trace_to_json(t));
  // Pretty-printed (whitespace everywhere) reads the same.
  check_same(t, trace_from_json(doc.dump(2), "t.json"));
  // Unknown fields at every level are skipped: fields may be added without a version bump.
  json extra = doc;
  extra["future"] = {{"nested", {1, 2, {{"deep", "x"}}}}, {"s", "a\"b\\c"}};
  extra["spans"][0]["thread"] = "main";
  extra["spans"][1]["args"] = json::array({1, "two", nullptr, json::object()});
  extra["memory"]["reserved"] = json::array({1, 2, 3});
  extra["solver"] = nullptr;  // null optional field counts as absent
  Trace u = trace_from_json(extra.dump(), "t.json");
  CHECK(u.solver.empty());
  CHECK(u.spans.size() == t.spans.size());
  // Escaped member names and values decode.
  std::string escaped = doc.dump();
  auto replace = [&](const std::string& from, const std::string& to) {
    size_t at = escaped.find(from);
    REQUIRE(at != std::string::npos);
    escaped.replace(at, from.size(), to);
  };
  replace("\"stage\":", "\"st\\u0061ge\":");
  replace("\"forward\"", "\"forw\\u0061rd\"");
  replace("\"t_us\":", "\"t_\\u0075s\":");
  check_same(t, trace_from_json(escaped, "t.json"));
  // Integral numbers written as fractions or exponents are read like the reference reader.
  json floats = doc;
  floats["spans"][2]["start_us"] = 20.0;
  floats["spans"][2]["end_us"] = 2.5e1;
  Trace f = trace_from_json(floats.dump(), "t.json");
  CHECK(f.spans[2].start_us == 20);
  CHECK(f.spans[2].end_us == 25);
  // A repeated key: the last one wins, as with nlohmann.
  std::string twice = doc.dump();
  twice.insert(1, "\"mode\":\"first\",");
  CHECK(trace_from_json(twice, "t.json").mode == "plan");
}

// ---- truncation -------------------------------------------------------------------------------

TEST_CASE("every truncation of a trace is reported as not valid JSON", "[core][trace]") {
  const std::string text = trace_to_json(small_trace());
  int truncated = 0;
  for (size_t n = 0; n < text.size(); ++n) {
    std::string part = text.substr(0, n);
    if (json::accept(part)) continue;  // only the whole text (maybe minus its newline)
    std::string e = error_of(part);
    INFO("prefix of " << n << " bytes: " << e);
    CHECK(contains(e, "t.json: not valid JSON"));
    CHECK(contains(e, "truncated"));
    ++truncated;
  }
  CHECK(truncated >= static_cast<int>(text.size()) - 2);
}

// ---- mutation fuzz ----------------------------------------------------------------------------

TEST_CASE("mutated traces give a FormatError or the values nlohmann reads, never a crash",
          "[core][trace]") {
  Trace t = small_trace();
  json base = json::parse(trace_to_json(t));
  base["extra"] = {{"u", "\xc3\xa9\\u00e9\\ud83d\\ude00"}, {"n", {-0.5, 1e10, true, false, nullptr}}};
  const std::string text = base.dump();
  const std::string alphabet = "{}[]\",:.-+eE0123456789 \\ntfu\x01\xc3\xa9\xff\xed\xa0";
  std::mt19937 rng(1234);
  int accepted = 0, refused = 0;
  for (int round = 0; round < 4000; ++round) {
    std::string s = text;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits; ++k) {
      size_t at = rng() % s.size();
      switch (rng() % 4) {
        case 0: s[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: s.erase(at, 1 + rng() % 3); break;
        case 2: s.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        case 3: s.insert(at, s.substr(rng() % s.size(), 1 + rng() % 8)); break;
      }
      if (s.empty()) s = "{";
    }
    INFO("round " << round << ": " << s);
    bool threw = false;
    Trace out;
    try {
      out = trace_from_json(s, "t.json");
    } catch (const FormatError& e) {
      threw = true;
      if (!json::accept(s)) CHECK(contains(e.what(), "not valid JSON"));
    }
    // Anything else escaping (or a crash) fails the test by itself.
    if (threw) {
      ++refused;
    } else {
      ++accepted;
      REQUIRE(json::accept(s));
      check_matches_dom(out, json::parse(s));
    }
  }
  CHECK(accepted > 0);
  CHECK(refused > 0);
}

// ---- specific bad input -----------------------------------------------------------------------

TEST_CASE("trace reader names the problem in bad input", "[core][trace]") {
  json doc = json::parse(trace_to_json(small_trace()));
  CHECK(contains(error_of(""), "not valid JSON"));
  CHECK(contains(error_of("   \n"), "truncated"));
  CHECK(contains(error_of("[1, 2]"), "expected a JSON object"));
  CHECK(contains(error_of("{} x"), "not valid JSON"));
  CHECK(contains(error_of("{\"a\": 01}"), "not valid JSON"));
  CHECK(contains(error_of("{\"a\": \"\\ud800\"}"), "not valid JSON"));
  CHECK(contains(error_of("{\"a\": \"\xc0\xaf\"}"), "not valid JSON"));  // overlong UTF-8
  CHECK(contains(error_of("{\"a\": 1e400}"), "not valid JSON"));
  CHECK(contains(error_of("{\"a\": 1}"), "no \"schema\" field"));
  CHECK(contains(error_of("\x7f" "ELF"), "not valid JSON at byte 1"));

  json other = doc;
  other["schema"] = "tidemark.profile";
  CHECK(contains(error_of(other.dump()), "schema is \"tidemark.profile\""));
  json v2 = doc;
  v2["version"] = 2;
  CHECK(contains(error_of(v2.dump()), "version 2 is not supported"));
  json vf = doc;
  vf["version"] = 1.5;
  CHECK(contains(error_of(vf.dump()), "no integer \"version\""));

  json no_memory = doc;
  no_memory.erase("memory");
  CHECK(contains(error_of(no_memory.dump()), "t.json: memory: missing field"));
  json no_phase = doc;
  no_phase["spans"][3].erase("phase");
  CHECK(contains(error_of(no_phase.dump()), "spans[3].phase: missing field"));
  json bad_phase = doc;
  bad_phase["spans"][1]["phase"] = "sideways";
  CHECK(contains(error_of(bad_phase.dump()), "unknown phase \"sideways\""));
  json null_stage = doc;
  null_stage["spans"][0]["stage"] = nullptr;
  CHECK(contains(error_of(null_stage.dump()), "spans[0].stage"));
  json far_stage = doc;
  far_stage["spans"][4]["stage"] = 9;
  CHECK(contains(error_of(far_stage.dump()), "stage 9 is outside the 3 stages"));
  json backwards_span = doc;
  backwards_span["spans"][2]["end_us"] = 1;
  CHECK(contains(error_of(backwards_span.dump()), "spans[2]: ends before it starts"));
  json spans_object = doc;
  spans_object["spans"] = json::object();
  CHECK(contains(error_of(spans_object.dump()), "spans: expected an array"));

  json negative = doc;
  negative["memory"]["activation"][3] = -4;
  CHECK(contains(error_of(negative.dump()), "memory.activation: element 3 is not a non-negative integer"));
  json fraction = doc;
  fraction["memory"]["t_us"][2] = 10.5;
  CHECK(contains(error_of(fraction.dump()), "memory.t_us: element 2 is not an integer"));
  json text_sample = doc;
  text_sample["memory"]["total"][0] = "many";
  CHECK(contains(error_of(text_sample.dump()), "memory.total: element 0"));
  json huge = doc;
  huge["memory"]["t_us"][0] = 18446744073709551615ull;
  CHECK(contains(error_of(huge.dump()), "memory.t_us: element 0 is out of range"));
  json ragged = doc;
  ragged["memory"]["temporary"].erase(0);
  CHECK(contains(error_of(ragged.dump()), "memory.temporary: length differs from t_us"));
  json back_in_time = doc;
  back_in_time["memory"]["t_us"][5] = 0;
  CHECK(contains(error_of(back_in_time.dump()), "time goes backwards at sample 5"));
  json missing_column = doc;
  missing_column["memory"].erase("gradient");
  CHECK(contains(error_of(missing_column.dump()), "memory.gradient: missing field"));
}

TEST_CASE("deep nesting is read or refused without exhausting the stack", "[core][trace]") {
  json doc = json::parse(trace_to_json(small_trace()));
  std::string text = doc.dump();
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  std::string nested = text;
  nested.insert(1, "\"deep\":" + deep + ",");
  CHECK(trace_from_json(nested, "t.json").spans.size() == doc["spans"].size());
  std::string open = text;
  open.insert(1, "\"deep\":" + std::string(200000, '[') + ",");
  CHECK(contains(error_of(open), "not valid JSON"));
}

// ---- files ------------------------------------------------------------------------------------

TEST_CASE("read_trace names the file it cannot read", "[core][trace]") {
  try {
    read_trace("/nonexistent/trace.json");
    FAIL("expected an error");
  } catch (const UserError& e) {
    CHECK(contains(e.what(), "trace '/nonexistent/trace.json' cannot be read"));
  }
  CHECK_THROWS_AS(read_trace("/"), UserError);
  const std::string path = std::string(TIDEMARK_BINARY_DIR) + "/test_trace_reader.json";
  write_trace(path, small_trace());
  check_same(small_trace(), read_trace(path));
  {
    std::ofstream cut(path, std::ios::trunc);
    cut << trace_to_json(small_trace()).substr(0, 200);
  }
  try {
    read_trace(path);
    FAIL("expected an error");
  } catch (const FormatError& e) {
    CHECK(contains(e.what(), path + ": not valid JSON"));
  }
  std::remove(path.c_str());
}

TEST_CASE("offload's copy spans and host bytes round-trip through both readers and the Chrome export",
          "[core][trace][offload]") {
  Trace t = small_trace();
  t.spans.push_back(Span{1, Phase::CopyOut, 0, 5, 9});
  t.spans.push_back(Span{1, Phase::CopyIn, 0, 30, 33});
  t.memory.host.assign(t.memory.size(), 0);
  if (!t.memory.host.empty()) t.memory.host.back() = 4096;
  const std::string text = trace_to_json(t);
  Trace u = trace_from_json(text, "t.json");
  check_same(t, u);
  CHECK(u.memory.host == t.memory.host);
  // The reference reader (a document the fast one leaves to it: an extra member first).
  json doc = json::parse(text);
  doc["memory"]["x"] = nullptr;
  Trace v = trace_from_json(doc.dump(), "t.json");
  CHECK(v.memory.host == t.memory.host);
  CHECK(v.spans[v.spans.size() - 1].phase == Phase::CopyIn);
  json ragged = json::parse(text);
  ragged["memory"]["host"].push_back(1);
  CHECK_THROWS_WITH(trace_from_json(ragged.dump(), "t.json"), Catch::Matchers::ContainsSubstring("memory.host"));
  // A trace without offload writes no host column.
  Trace plain = small_trace();
  CHECK(trace_to_json(plain).find("\"host\"") == std::string::npos);

  json chrome = json::parse(trace_to_chrome_json(u));
  std::set<std::string> names;
  int host_counters = 0;
  for (const auto& e : chrome["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "thread_name") names.insert(e["args"]["name"].get<std::string>());
    host_counters += e["ph"] == "C" && e["name"] == "pinned host memory (bytes)";
  }
  CHECK(names.count("copies to host") == 1);
  CHECK(names.count("copies from host") == 1);
  CHECK(host_counters == static_cast<int>(u.memory.size()));
}
