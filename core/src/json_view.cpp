#include "json_view.hpp"

#include <cmath>
#include <fmt/format.h>

#include "tidemark/core/error.hpp"

namespace tidemark::detail {

std::string JsonView::child_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
}

std::string JsonView::describe_value() const {
  std::string s = v_->dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

void JsonView::fail(std::string_view problem) const {
  throw FormatError(fmt::format("{}: {}: {}", source_, path_.empty() ? "document" : path_, problem));
}

bool JsonView::has(std::string_view key) const {
  return v_->is_object() && v_->contains(std::string(key));
}

JsonView JsonView::at(std::string_view key) const {
  if (!v_->is_object()) fail("expected an object");
  auto it = v_->find(std::string(key));
  if (it == v_->end()) {
    throw FormatError(fmt::format("{}: {}: missing field", source_, child_path(key)));
  }
  return JsonView(*it, child_path(key), source_);
}

std::optional<JsonView> JsonView::get(std::string_view key) const {
  if (!v_->is_object()) fail("expected an object");
  auto it = v_->find(std::string(key));
  if (it == v_->end() || it->is_null()) return std::nullopt;
  return JsonView(*it, child_path(key), source_);
}

std::vector<JsonView> JsonView::items() const {
  if (!v_->is_array()) fail("expected an array");
  std::vector<JsonView> out;
  out.reserve(v_->size());
  for (size_t i = 0; i < v_->size(); ++i) {
    out.emplace_back((*v_)[i], fmt::format("{}[{}]", path_, i), source_);
  }
  return out;
}

std::vector<JsonView> JsonView::items(std::string_view key) const { return at(key).items(); }

double JsonView::number() const {
  if (!v_->is_number()) fail(fmt::format("expected a number, got {}", describe_value()));
  double d = v_->get<double>();
  if (!std::isfinite(d)) fail("expected a finite number");
  return d;
}

double JsonView::non_negative() const {
  double d = number();
  if (d < 0) fail(fmt::format("expected a non-negative number, got {}", describe_value()));
  return d;
}

std::uint64_t JsonView::u64() const {
  if (v_->is_number_unsigned()) return v_->get<std::uint64_t>();
  if (v_->is_number_integer()) {
    fail(fmt::format("expected a non-negative integer, got {}", describe_value()));
  }
  double d = number();
  if (d < 0 || d != std::floor(d) || d >= 1.8e19) {
    fail(fmt::format("expected a non-negative integer, got {}", describe_value()));
  }
  return static_cast<std::uint64_t>(d);
}

std::int64_t JsonView::i64() const {
  if (v_->is_number_integer()) {
    if (v_->is_number_unsigned() && v_->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
      fail("integer out of range");
    }
    return v_->get<std::int64_t>();
  }
  double d = number();
  if (d != std::floor(d) || std::fabs(d) >= 9.2e18) {
    fail(fmt::format("expected an integer, got {}", describe_value()));
  }
  return static_cast<std::int64_t>(d);
}

std::string JsonView::str() const {
  if (!v_->is_string()) fail(fmt::format("expected a string, got {}", describe_value()));
  return v_->get<std::string>();
}

bool JsonView::boolean() const {
  if (!v_->is_boolean()) fail(fmt::format("expected true or false, got {}", describe_value()));
  return v_->get<bool>();
}

json parse_json(std::string_view text, const std::string& source) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    // e.byte counts from 1, and lies past the end when the text stopped in mid-value.
    const size_t offset = e.byte > 0 ? e.byte - 1 : 0;
    size_t line = 1, column = 1;
    for (size_t i = 0; i < offset && i < text.size(); ++i) {
      column = text[i] == '\n' ? 1 : column + 1;
      line += text[i] == '\n';
    }
    if (offset >= text.size()) {
      throw FormatError(fmt::format("{}: not valid JSON: it ends early at byte {} (line {}); is the file truncated?",
                                    source, text.size(), line));
    }
    std::string_view what = e.what();  // "[json.exception...] parse error at line 1, column 2: <what>"
    const size_t colon = what.find(": ", what.find("column"));
    if (colon != std::string_view::npos) what.remove_prefix(colon + 2);
    throw FormatError(fmt::format("{}: not valid JSON at byte {} (line {}, column {}): {}; is the file truncated or "
                                  "corrupt?",
                                  source, offset + 1, line, column, what));
  } catch (const json::out_of_range& e) {
    // Valid JSON syntax that nlohmann still refuses: a number beyond a double's range (1e400).
    throw FormatError(fmt::format("{}: not valid JSON: a number is beyond the range of a double ({}); is the "
                                  "file corrupt?",
                                  source, e.what()));
  }
}

json parse_document(std::string_view text, const std::string& source, std::string_view schema,
                    int version) {
  json doc = parse_json(text, source);
  check_header(doc, source, schema, version);
  return doc;
}

void check_header(const json& doc, const std::string& source, std::string_view schema, int version) {
  if (!doc.is_object()) {
    throw FormatError(fmt::format("{}: expected a JSON object with \"schema\": \"{}\"", source, schema));
  }
  auto s = doc.find("schema");
  if (s == doc.end() || !s->is_string()) {
    throw FormatError(fmt::format("{}: no \"schema\" field; expected a {} file", source, schema));
  }
  if (s->get<std::string>() != schema) {
    throw FormatError(fmt::format("{}: schema is \"{}\", expected \"{}\" (wrong kind of file?)",
                                  source, s->get<std::string>(), schema));
  }
  auto v = doc.find("version");
  if (v == doc.end() || !v->is_number_integer()) {
    throw FormatError(fmt::format("{}: no integer \"version\" field", source));
  }
  if (v->get<long long>() != version) {
    throw FormatError(fmt::format(
        "{}: {} version {} is not supported by this tidemark (it reads version {}); regenerate "
        "the file with this build",
        source, schema, v->get<long long>(), version));
  }
}

json document_header(std::string_view schema, int version) {
  json j = json::object();
  j["schema"] = std::string(schema);
  j["version"] = version;
  return j;
}

}  // namespace tidemark::detail
