// tidemark.trace/1 reading and writing.
//
// Sections:
//   [1] names of phases and categories, MemoryTimeline::push
//   [2] writer (nlohmann DOM; traces are written once, so simple beats fast here)
//   [3] reference reader: nlohmann DOM + JsonView, the one source of error messages
//   [4] fast reader, pass 1: validate the whole text, find the top-level members
//   [5] fast reader, pass 2: columns and spans parsed straight from the text
//   [6] trace_from_json, read_trace, write_trace
//   [7] Chrome trace event export
#include "tidemark/core/trace.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <string_view>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_json.hpp"
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
  doc["memory"] = std::move(mem);
  return doc.dump() + "\n";
}

// ---- [3] Reference reader ---------------------------------------------------------------
// The nlohmann DOM + JsonView reader. It reads the small members (config, stages, steps)
// and, when the fast reader meets a value it does not expect, re-reads that member so that
// every error message comes from this one place.
namespace {

Phase phase_from(const JsonView& v) {
  std::string s = v.str();
  if (s == "forward") return Phase::Forward;
  if (s == "backward") return Phase::Backward;
  if (s == "recompute") return Phase::Recompute;
  v.fail(fmt::format("unknown phase \"{}\"; expected forward, backward or recompute", s));
}

// Times are microseconds from the trace start. Beyond +-1e18 (31,700 years) a time is
// corrupt; refusing it keeps every duration and difference of two times within int64, for
// the Chrome export here and the viewer. The fast reader takes at most 18 digits, so it never
// meets one: it leaves those to this reader, which refuses them.
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
}

}  // namespace

// ---- [4] Fast reader, pass 1: validate and find the top-level members ----------------------
// Note [Two-pass trace reading]
// A trace of 1,000,000 samples is about 80 MB of JSON. nlohmann's DOM parse alone took
// 0.8-1.9 s on it on the 2-core machines this was written on, and holds every number as a
// 16-byte node. Pass 1 checks the syntax of the whole text without building anything (so
// a truncated or corrupt file is reported as such, whichever member it breaks) and records
// where each top-level member's value lies. Pass 2 fills the columns and spans straight from
// that text. Pass 2 therefore only ever sees valid JSON, and when a value is not of the shape
// it expects (a string where a number goes, a fraction, a missing field) it returns false and
// the reference reader re-reads that one member and throws its usual message. Pass 1 accepts
// exactly what nlohmann accepts (RFC 8259, UTF-8 checked, surrogate pairs checked);
// tests/core/test_trace_reader.cpp holds it to that on mutated documents.
namespace {

struct SyntaxError {
  const char* at;
  const char* what;
};

inline bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The text must be followed by a '\0' (std::string and FileText both are): neither a
// digit nor whitespace, it ends those scans without a bounds check per character.
class Validator {
 public:
  explicit Validator(const char* end) : end_(end) {}

  const char* ws(const char* p) const {
    while (is_ws(*p)) ++p;
    return p;
  }

  // Checks one JSON value starting at p (no leading whitespace) and returns its end.
  // Iterative, with an explicit stack, so deep nesting cannot overflow the C++ stack.
  const char* value(const char* p) {
    stack_.clear();
    for (;;) {
      if (p >= end_) throw SyntaxError{p, "unexpected end of file"};
      switch (*p) {
        case '{':
          p = ws(p + 1);
          if (p < end_ && *p == '}') {
            ++p;
            break;
          }
          stack_.push_back('{');
          p = member_key(p);
          continue;
        case '[':
          p = ws(p + 1);
          if (p < end_ && *p == ']') {
            ++p;
            break;
          }
          stack_.push_back('[');
          continue;
        case '"': p = string(p); break;
        case 't': p = literal(p, "true", 4); break;
        case 'f': p = literal(p, "false", 5); break;
        case 'n': p = literal(p, "null", 4); break;
        default:
          if (*p == '-' || is_digit(*p)) {
            p = number(p);
            break;
          }
          throw SyntaxError{p, "expected a value"};
      }
      // A value ended: close containers or move to the next element.
      for (;;) {
        if (stack_.empty()) return p;
        p = ws(p);
        if (p >= end_) throw SyntaxError{p, "unexpected end of file"};
        const char top = stack_.back();
        if (*p == ',') {
          p = ws(p + 1);
          if (top == '{') p = member_key(p);
          break;
        }
        if ((top == '{' && *p == '}') || (top == '[' && *p == ']')) {
          ++p;
          stack_.pop_back();
          continue;
        }
        throw SyntaxError{p, top == '{' ? "expected ',' or '}'" : "expected ',' or ']'"};
      }
    }
  }

  // A member key and its colon; returns the start of the member's value.
  const char* member_key(const char* p) {
    if (p >= end_) throw SyntaxError{p, "unexpected end of file"};
    if (*p != '"') throw SyntaxError{p, "expected a member name in double quotes"};
    p = ws(string(p));
    if (p >= end_) throw SyntaxError{p, "unexpected end of file"};
    if (*p != ':') throw SyntaxError{p, "expected ':'"};
    return ws(p + 1);
  }

  const char* string(const char* p) const {
    ++p;  // opening quote
    for (;;) {
      if (p >= end_) throw SyntaxError{p, "unexpected end of file inside a string"};
      const unsigned char c = static_cast<unsigned char>(*p);
      if (c == '"') return p + 1;
      if (c == '\\') {
        p = escape(p);
      } else if (c < 0x20) {
        throw SyntaxError{p, "control character inside a string"};
      } else if (c < 0x80) {
        ++p;
      } else {
        p = utf8(p);
      }
    }
  }

  const char* number(const char* p) const {
    const char* start = p;
    if (*p == '-') ++p;
    if (p >= end_) throw SyntaxError{p, "unexpected end of file inside a number"};
    if (*p == '0') {
      ++p;
    } else if (is_digit(*p)) {
      while (is_digit(*p)) ++p;
    } else {
      throw SyntaxError{p, "expected a digit"};
    }
    const bool long_integer = p - start > 300;
    if (*p == '.') {
      ++p;
      if (!is_digit(*p)) throw SyntaxError{p, "expected a digit after '.'"};
      while (is_digit(*p)) ++p;
    }
    bool exponent = false;
    if (*p == 'e' || *p == 'E') {
      exponent = true;
      ++p;
      if (*p == '+' || *p == '-') ++p;
      if (!is_digit(*p)) throw SyntaxError{p, "expected a digit in the exponent"};
      while (is_digit(*p)) ++p;
    }
    // nlohmann refuses numbers beyond double's range (1e400); only an exponent or a very
    // long integer part can get there, so only those pay for strtod.
    if ((exponent || long_integer) && !std::isfinite(std::strtod(std::string(start, p).c_str(), nullptr))) {
      throw SyntaxError{start, "number out of range"};
    }
    return p;
  }

 private:
  const char* literal(const char* p, const char* word, size_t n) const {
    for (size_t i = 0; i < n; ++i) {
      if (p + i >= end_) throw SyntaxError{p + i, "unexpected end of file"};
      if (p[i] != word[i]) throw SyntaxError{p + i, "expected a value"};
    }
    return p + n;
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // \uXXXX: returns the code unit, p moved past it.
  unsigned code_unit(const char*& p) const {
    // p at the backslash
    if (p + 1 >= end_ || p[1] != 'u') throw SyntaxError{p + 1, "expected \\u after a high surrogate"};
    unsigned v = 0;
    for (int i = 2; i < 6; ++i) {
      if (p + i >= end_) throw SyntaxError{p + i, "unexpected end of file inside a string"};
      int h = hex(p[i]);
      if (h < 0) throw SyntaxError{p + i, "expected four hex digits after \\u"};
      v = v * 16 + static_cast<unsigned>(h);
    }
    p += 6;
    return v;
  }

  const char* escape(const char* p) const {
    if (p + 1 >= end_) throw SyntaxError{p + 1, "unexpected end of file inside a string"};
    switch (p[1]) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        return p + 2;
      case 'u': {
        unsigned u = code_unit(p);
        if (u >= 0xDC00 && u <= 0xDFFF) throw SyntaxError{p, "lone low surrogate in \\u escape"};
        if (u >= 0xD800 && u <= 0xDBFF) {
          if (p >= end_ || *p != '\\') throw SyntaxError{p, "high surrogate not followed by \\u"};
          unsigned low = code_unit(p);
          if (low < 0xDC00 || low > 0xDFFF) throw SyntaxError{p, "high surrogate not followed by a low one"};
        }
        return p;
      }
      default:
        throw SyntaxError{p + 1, "invalid escape in a string"};
    }
  }

  // One UTF-8 sequence of 2-4 bytes, well formed per RFC 3629 (no overlongs, no surrogates).
  const char* utf8(const char* p) const {
    const auto b = [&](int i) -> unsigned {
      if (p + i >= end_) throw SyntaxError{p + i, "unexpected end of file inside a string"};
      return static_cast<unsigned char>(p[i]);
    };
    const unsigned c = b(0);
    auto in = [](unsigned x, unsigned lo, unsigned hi) { return x >= lo && x <= hi; };
    int n = 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (in(c, 0xC2, 0xDF)) {
      n = 1;
    } else if (c == 0xE0) {
      n = 2, lo = 0xA0;
    } else if (in(c, 0xE1, 0xEC) || in(c, 0xEE, 0xEF)) {
      n = 2;
    } else if (c == 0xED) {
      n = 2, hi = 0x9F;
    } else if (c == 0xF0) {
      n = 3, lo = 0x90;
    } else if (in(c, 0xF1, 0xF3)) {
      n = 3;
    } else if (c == 0xF4) {
      n = 3, hi = 0x8F;
    } else {
      throw SyntaxError{p, "invalid UTF-8 byte"};
    }
    if (!in(b(1), lo, hi)) throw SyntaxError{p + 1, "invalid UTF-8 sequence"};
    for (int i = 2; i <= n; ++i) {
      if (!in(b(i), 0x80, 0xBF)) throw SyntaxError{p + i, "invalid UTF-8 sequence"};
    }
    return p + n + 1;
  }

  const char* end_;
  std::vector<char> stack_;
};

// Decodes the string at p (valid JSON, p at the opening quote) and moves p past it. Without
// escapes (the common case) the result views the text; otherwise it is decoded into scratch.
std::string_view read_string(const char*& p, std::string& scratch) {
  const char* s = ++p;
  while (*p != '"' && *p != '\\') ++p;
  if (*p == '"') return std::string_view(s, static_cast<size_t>(p++ - s));
  scratch.assign(s, static_cast<size_t>(p - s));
  auto hex4 = [](const char* q) {
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = q[i];
      v = v * 16 + static_cast<unsigned>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
  };
  while (*p != '"') {
    if (*p != '\\') {
      scratch.push_back(*p++);
      continue;
    }
    char e = p[1];
    p += 2;
    switch (e) {
      case 'b': scratch.push_back('\b'); break;
      case 'f': scratch.push_back('\f'); break;
      case 'n': scratch.push_back('\n'); break;
      case 'r': scratch.push_back('\r'); break;
      case 't': scratch.push_back('\t'); break;
      case 'u': {
        unsigned cp = hex4(p);
        p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {  // pass 1 checked the low half follows
          cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(p + 2) - 0xDC00);
          p += 6;
        }
        if (cp < 0x80) {
          scratch.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
          scratch.push_back(static_cast<char>(0xC0 | (cp >> 6)));
          scratch.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
          scratch.push_back(static_cast<char>(0xE0 | (cp >> 12)));
          scratch.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
          scratch.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
          scratch.push_back(static_cast<char>(0xF0 | (cp >> 18)));
          scratch.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
          scratch.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
          scratch.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
        break;
      }
      default: scratch.push_back(e); break;  // " \ /
    }
  }
  ++p;
  return scratch;
}

// Where one top-level member's value lies in the text.
struct Member {
  std::string key;
  const char* begin;
  const char* end;
};

class TopLevel {
 public:
  // [begin, end) must be followed by a readable '\0' (pass 2 scans stop on it).
  TopLevel(const char* begin, const char* end, const std::string& source, std::string_view schema, int version)
      : source_(source) {
    const std::string_view text(begin, static_cast<size_t>(end - begin));
    try {
      Validator v(end);
      const char* p = v.ws(begin);
      if (p < end && *p == '{') {
        p = v.ws(p + 1);
        if (p >= end) throw SyntaxError{p, "unexpected end of file"};
        if (*p != '}') {
          for (;;) {
            if (*p != '"') throw SyntaxError{p, "expected a member name in double quotes"};
            const char* key_at = p;
            p = v.member_key(p);
            const char* k = key_at;
            std::string scratch;
            std::string key(read_string(k, scratch));
            const char* value_begin = p;
            p = v.value(p);
            members_.push_back(Member{std::move(key), value_begin, p});
            p = v.ws(p);
            if (p >= end) throw SyntaxError{p, "unexpected end of file"};
            if (*p == ',') {
              p = v.ws(p + 1);
              if (p >= end) throw SyntaxError{p, "unexpected end of file"};
              continue;
            }
            if (*p != '}') throw SyntaxError{p, "expected ',' or '}'"};
            break;
          }
        }
        ++p;
        is_object_ = true;
      } else {
        p = v.value(p);
      }
      p = v.ws(p);
      if (p != end) throw SyntaxError{p, "unexpected text after the end of the document"};
    } catch (const SyntaxError& e) {
      throw FormatError(describe_syntax_error(text, e));
    }
    check_header(schema, version);
  }

  // The last member named key (a repeated key overrides, as with nlohmann), or null.
  const Member* find(std::string_view key) const {
    for (auto it = members_.rbegin(); it != members_.rend(); ++it) {
      if (it->key == key) return &*it;
    }
    return nullptr;
  }
  // Like JsonView::at / get: a missing member is an error; a null one counts as absent in get.
  const Member& at(std::string_view key) const {
    const Member* m = find(key);
    if (!m) throw FormatError(fmt::format("{}: {}: missing field", source_, key));
    return *m;
  }
  const Member* get(std::string_view key) const {
    const Member* m = find(key);
    if (!m || std::string_view(m->begin, static_cast<size_t>(m->end - m->begin)) == "null") return nullptr;
    return m;
  }
  // A member as a DOM, for the reference reader. The text is valid JSON already; the catch
  // is there so that a disagreement with nlohmann still ends as a FormatError.
  json dom(const Member& m) const {
    try {
      return json::parse(m.begin, m.end);
    } catch (const json::exception& e) {
      throw FormatError(fmt::format("{}: {}: {}", source_, m.key, e.what()));
    }
  }
  const std::string& source() const { return source_; }

 private:
  std::string describe_syntax_error(std::string_view text, const SyntaxError& e) const {
    const size_t offset = static_cast<size_t>(e.at - text.data());
    size_t line = 1, column = 1;
    for (size_t i = 0; i < offset && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    if (offset >= text.size()) {
      return fmt::format("{}: not valid JSON: it ends early at byte {} (line {}); is the file truncated?",
                         source_, offset, line);
    }
    return fmt::format("{}: not valid JSON at byte {} (line {}, column {}): {}; is the file truncated or "
                       "corrupt?",
                       source_, offset + 1, line, column, e.what);
  }

  void check_header(std::string_view schema, int version) const {
    if (!is_object_) {
      throw FormatError(fmt::format("{}: expected a JSON object with \"schema\": \"{}\"", source_, schema));
    }
    const Member* s = find("schema");
    json sv = s ? dom(*s) : json();
    if (!sv.is_string()) {
      throw FormatError(fmt::format("{}: no \"schema\" field; expected a {} file", source_, schema));
    }
    if (sv.get<std::string>() != schema) {
      throw FormatError(fmt::format("{}: schema is \"{}\", expected \"{}\" (wrong kind of file?)", source_,
                                    sv.get<std::string>(), schema));
    }
    const Member* v = find("version");
    json vv = v ? dom(*v) : json();
    if (!vv.is_number_integer()) throw FormatError(fmt::format("{}: no integer \"version\" field", source_));
    if (vv.get<long long>() != version) {
      throw FormatError(fmt::format(
          "{}: {} version {} is not supported by this tidemark (it reads version {}); regenerate "
          "the file with this build",
          source_, schema, vv.get<long long>(), version));
    }
  }

  std::string source_;
  std::vector<Member> members_;
  bool is_object_ = false;
};

// ---- [5] Fast reader, pass 2: columns and spans straight from valid text -------------------
// Every function here returns false on anything but the plain shape the writer produces;
// the caller then falls back to the reference reader for that member.

// Page faults, not parsing, were a third of loading an 80 MB trace on the VMs this was
// measured on (a fault per 4 KiB page of the text and of every column). Transparent huge
// pages, where the kernel offers them on request, cut them 512-fold. Advice only: without
// THP nothing changes.
void advise_huge_pages(void* data, size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kHuge = 2u << 20;
  if (bytes < 2 * kHuge) return;
  const uintptr_t a = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t b = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
  if (b > a) ::madvise(reinterpret_cast<void*>(a), b - a, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

inline const char* skip_ws(const char* p) {
  while (is_ws(*p)) ++p;
  return p;
}

// A plain integer (no fraction, no exponent, at most 18 digits so it cannot overflow).
// Anything else is left to the reference reader.
inline bool read_int(const char*& p, std::int64_t& out) {
  const char* q = p;
  bool negative = false;
  if (*q == '-') {
    negative = true;
    ++q;
  }
  const char* digits = q;
  std::uint64_t v = 0;
  while (is_digit(*q)) v = v * 10 + static_cast<unsigned>(*q++ - '0');
  const size_t n = static_cast<size_t>(q - digits);
  if (n == 0 || n > 18 || *q == '.' || *q == 'e' || *q == 'E') return false;
  out = negative ? -static_cast<std::int64_t>(v) : static_cast<std::int64_t>(v);
  p = q;
  return true;
}

inline bool read_uint(const char*& p, std::uint64_t& out) {
  const char* q = p;
  const char* digits = q;
  std::uint64_t v = 0;
  while (is_digit(*q)) v = v * 10 + static_cast<unsigned>(*q++ - '0');
  const size_t n = static_cast<size_t>(q - digits);
  if (n == 0 || n > 19 || *q == '.' || *q == 'e' || *q == 'E') return false;
  out = v;
  p = q;
  return true;
}

// Skips one value of valid JSON; p at its first character.
const char* skip_valid_value(const char* p) {
  if (*p == '"') {
    ++p;
    while (*p != '"') p += (*p == '\\') ? 2 : 1;
    return p + 1;
  }
  if (*p == '{' || *p == '[') {
    int depth = 0;
    for (;;) {
      char c = *p;
      if (c == '"') {
        p = skip_valid_value(p);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) return p + 1;
      }
      ++p;
    }
  }
  while (!is_ws(*p) && *p != ',' && *p != '}' && *p != ']' && *p != '\0') ++p;
  return p;
}

// [p, end) is the column's text. Reserving its exact length first matters: growing a vector
// of a million elements copies it ~20 times and faults in every page of each copy.
// The end of a value that is most likely a flat array of numbers (a memory column), found
// with vectorized searches instead of a scan per character; anything nested or quoted
// inside goes the careful way.
const char* skip_number_array(const char* p, const char* limit) {
  if (*p != '[') return skip_valid_value(p);
  const char* close = static_cast<const char*>(std::memchr(p, ']', static_cast<size_t>(limit - p)));
  if (!close) return skip_valid_value(p);
  const size_t n = static_cast<size_t>(close - p - 1);
  if (std::memchr(p + 1, '[', n) || std::memchr(p + 1, '{', n) || std::memchr(p + 1, '"', n)) {
    return skip_valid_value(p);
  }
  return close + 1;
}

template <typename T>
bool fast_column(const char* p, const char* end, std::vector<T>& out) {
  out.clear();
  out.reserve(static_cast<size_t>(std::count(p, end, ',')) + 1);
  advise_huge_pages(out.data(), out.capacity() * sizeof(T));
  p = skip_ws(p);
  if (*p != '[') return false;
  p = skip_ws(p + 1);
  if (*p == ']') return true;
  for (;;) {
    if constexpr (std::is_unsigned_v<T>) {
      std::uint64_t v;
      if (!read_uint(p, v)) return false;
      out.push_back(v);
    } else {
      std::int64_t v;
      if (!read_int(p, v)) return false;
      out.push_back(v);
    }
    if (*p == ',') {
      ++p;
    } else {
      p = skip_ws(p);
      if (*p == ',') {
        ++p;
      } else {
        return *p == ']';
      }
    }
    p = skip_ws(p);
  }
}

bool fast_memory(const Member& m, MemoryTimeline& out) {
  const char* p = skip_ws(m.begin);
  if (*p != '{') return false;
  p = skip_ws(p + 1);
  // Columns are parsed where they stand, in any order; t_us need not come first.
  std::array<const char*, kCategoryCount + 2> at{}, at_end{};
  std::string scratch;
  if (*p != '}') {
    for (;;) {
      std::string_view key = read_string(p, scratch);
      p = skip_ws(skip_ws(p) + 1);
      int slot = -1;
      if (key == "t_us") slot = 0;
      if (key == "total") slot = 1;
      for (int c = 0; c < kCategoryCount; ++c) {
        if (key == to_string(kAllCategories[c])) slot = 2 + c;
      }
      const char* value_end = slot >= 0 ? skip_number_array(p, m.end) : skip_valid_value(p);
      if (slot >= 0) {
        at[static_cast<size_t>(slot)] = p;
        at_end[static_cast<size_t>(slot)] = value_end;
      }
      p = skip_ws(value_end);
      if (*p == '}') break;
      p = skip_ws(p + 1);
    }
  }
  for (const char* a : at) {
    if (!a) return false;
  }
  if (!fast_column(at[0], at_end[0], out.t_us)) return false;
  if (!fast_column(at[1], at_end[1], out.total)) return false;
  for (size_t c = 0; c < kCategoryCount; ++c) {
    if (!fast_column(at[2 + c], at_end[2 + c], out.category[c])) return false;
  }
  return true;
}

bool fast_spans(const Member& m, int n_stages, std::vector<Span>& out) {
  out.reserve(static_cast<size_t>(std::count(m.begin, m.end, '{')));
  advise_huge_pages(out.data(), out.capacity() * sizeof(Span));
  const char* p = skip_ws(m.begin);
  if (*p != '[') return false;
  p = skip_ws(p + 1);
  if (*p == ']') return true;
  std::string scratch;
  for (;;) {
    if (*p != '{') return false;
    p = skip_ws(p + 1);
    if (*p == '}') return false;  // all fields missing
    Span sp;
    std::int64_t stage = 0, step = 0;
    unsigned seen = 0;
    for (;;) {
      std::string_view key = read_string(p, scratch);
      p = skip_ws(skip_ws(p) + 1);
      if (key == "stage") {
        if (!read_int(p, stage)) return false;
        seen |= 1;
      } else if (key == "phase") {
        if (*p != '"') return false;
        std::string_view s = read_string(p, scratch);
        if (s == "forward") {
          sp.phase = Phase::Forward;
        } else if (s == "backward") {
          sp.phase = Phase::Backward;
        } else if (s == "recompute") {
          sp.phase = Phase::Recompute;
        } else {
          return false;
        }
        seen |= 2;
      } else if (key == "step") {
        if (!read_int(p, step)) return false;
        seen |= 4;
      } else if (key == "start_us") {
        if (!read_int(p, sp.start_us)) return false;
        seen |= 8;
      } else if (key == "end_us") {
        if (!read_int(p, sp.end_us)) return false;
        seen |= 16;
      } else {
        p = skip_valid_value(p);
      }
      p = skip_ws(p);
      if (*p == '}') break;
      p = skip_ws(p + 1);
    }
    if (seen != 31 || stage < 0 || stage >= n_stages || sp.end_us < sp.start_us) return false;
    sp.stage = static_cast<int>(stage);
    sp.step = static_cast<int>(step);
    out.push_back(sp);
    p = skip_ws(p + 1);
    if (*p == ']') return true;
    p = skip_ws(p + 1);  // the comma
  }
}

}  // namespace

// ---- [6] trace_from_json, read_trace -------------------------------------------------------

namespace {

Trace parse_trace(const char* begin, const char* end, const std::string& source) {
  TopLevel root(begin, end, source, kTraceSchema, kTraceVersion);
  auto view = [&](const json& j, const char* path) { return JsonView(j, path, source); };
  Trace t;
  if (const Member* m = root.get("model")) {
    json j = root.dom(*m);
    t.model = view(j, "model").str();
  }
  if (t.model == "gpt") {
    json j = root.dom(root.at("config"));
    t.config = detail::config_from_json(view(j, "config"));
  }
  {
    json j = root.dom(root.at("mode"));
    t.mode = view(j, "mode").str();
  }
  if (const Member* m = root.get("solver")) {
    json j = root.dom(*m);
    t.solver = view(j, "solver").str();
  }
  if (const Member* m = root.get("budget_bytes")) {
    json j = root.dom(*m);
    t.budget_bytes = view(j, "budget_bytes").u64();
  }
  if (const Member* m = root.get("predicted_peak_bytes")) {
    json j = root.dom(*m);
    t.predicted_peak_bytes = view(j, "predicted_peak_bytes").u64();
  }
  {
    json j = root.dom(root.at("peak_bytes"));
    t.peak_bytes = view(j, "peak_bytes").u64();
  }
  {
    json j = root.dom(root.at("stages"));
    t.stages = reference_stages(view(j, "stages"));
  }
  const int n_stages = static_cast<int>(t.stages.size());
  const Member& spans = root.at("spans");
  if (!fast_spans(spans, n_stages, t.spans)) {
    t.spans.clear();
    json j = root.dom(spans);
    t.spans = reference_spans(view(j, "spans"), n_stages);
  }
  {
    json j = root.dom(root.at("steps"));
    t.steps = reference_steps(view(j, "steps"));
  }
  const Member& mem = root.at("memory");
  if (!fast_memory(mem, t.memory)) {
    json j = root.dom(mem);
    reference_memory(view(j, "memory"), t.memory);
  }
  auto fail = [&](const char* column, const std::string& problem) {
    throw FormatError(fmt::format("{}: memory.{}: {}", source, column, problem));
  };
  const size_t n = t.memory.t_us.size();
  if (t.memory.total.size() != n) fail("total", "length differs from t_us");
  for (int c = 0; c < kCategoryCount; ++c) {
    if (t.memory.category[c].size() != n) fail(to_string(kAllCategories[c]), "length differs from t_us");
  }
  for (size_t i = 1; i < n; ++i) {
    if (t.memory.t_us[i] < t.memory.t_us[i - 1]) {
      fail("t_us", fmt::format("time goes backwards at sample {}", i));
    }
  }
  return t;
}

}  // namespace

Trace trace_from_json(const std::string& text, const std::string& source) {
  // std::string guarantees the '\0' after its last character that pass 2 relies on.
  return parse_trace(text.data(), text.data() + text.size(), source);
}

namespace {

// A whole file in memory, followed by a '\0'. Read straight into fresh anonymous memory
// (no zero-fill pass, no stream copies); messages match read_text_file's.
class FileText {
 public:
  FileText(const std::string& path, std::string_view what) {
    try {
      load(path, what);
    } catch (...) {
      release();  // the destructor does not run for a constructor that throws
      throw;
    }
  }
  ~FileText() { release(); }
  FileText(const FileText&) = delete;
  FileText& operator=(const FileText&) = delete;
  const char* begin() const { return data_; }
  const char* end() const { return data_ + size_; }

 private:
  void load(const std::string& path, std::string_view what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      throw UserError(fmt::format("{} '{}' cannot be read: {}", what, path, std::strerror(errno)));
    }
    if (S_ISDIR(st.st_mode)) throw UserError(fmt::format("{} '{}' is a directory, expected a file", what, path));
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw UserError(fmt::format("{} '{}' cannot be opened: {}", what, path, std::strerror(errno)));
    grow((S_ISREG(st.st_mode) ? static_cast<size_t>(st.st_size) : 0) + 1);
    auto read_some = [&](char* into, size_t n) -> size_t {
      for (;;) {
        ssize_t got = ::read(fd_, into, n);
        if (got >= 0) return static_cast<size_t>(got);
        if (errno != EINTR) {
          throw UserError(fmt::format("{} '{}' could not be read to the end: {}", what, path, std::strerror(errno)));
        }
      }
    };
    for (;;) {
      if (size_ + 1 < capacity_) {
        const size_t n = read_some(data_ + size_, capacity_ - 1 - size_);
        if (n == 0) break;
        size_ += n;
        continue;
      }
      // Full: the file grew since stat, or is a pipe. Only now pay for a bigger buffer.
      char probe[65536];
      const size_t n = read_some(probe, sizeof probe);
      if (n == 0) break;
      grow(capacity_ * 2 + sizeof probe);
      std::memcpy(data_ + size_, probe, n);
      size_ += n;
    }
    data_[size_] = '\0';
  }
  void release() {
    if (data_) ::munmap(data_, capacity_);
    if (fd_ >= 0) ::close(fd_);
    data_ = nullptr;
    fd_ = -1;
  }
  void grow(size_t capacity) {
    void* p = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    advise_huge_pages(p, capacity);
    if (data_) {
      std::memcpy(p, data_, size_);
      ::munmap(data_, capacity_);
    }
    data_ = static_cast<char*>(p);
    capacity_ = capacity;
  }
  int fd_ = -1;
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace

Trace read_trace(const std::string& path) {
  FileText text(path, "trace");
  return parse_trace(text.begin(), text.end(), path);
}

void write_trace(const std::string& path, const Trace& trace) {
  write_file_atomic(path, trace_to_json(trace), "trace");
}

// ---- [7] Chrome trace event export ----------------------------------------------------------

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
