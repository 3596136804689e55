#pragma once
// Private to core: checked access to a parsed JSON document. Every failure names the
// source file and the field path ("profile.json: layers[3].saved_bytes: ...").
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tidemark::detail {

using json = nlohmann::json;

class JsonView {
 public:
  JsonView(const json& value, std::string path, std::string source)
      : v_(&value), path_(std::move(path)), source_(std::move(source)) {}

  bool has(std::string_view key) const;
  JsonView at(std::string_view key) const;
  std::optional<JsonView> get(std::string_view key) const;
  std::vector<JsonView> items() const;          // this value must be an array
  std::vector<JsonView> items(std::string_view key) const;

  double number() const;         // finite number
  double non_negative() const;   // finite, >= 0
  std::uint64_t u64() const;     // integer >= 0
  std::int64_t i64() const;      // integer
  std::string str() const;
  bool boolean() const;
  const json& raw() const { return *v_; }
  const std::string& path() const { return path_; }

  [[noreturn]] void fail(std::string_view problem) const;

 private:
  std::string child_path(std::string_view key) const;
  std::string describe_value() const;
  const json* v_;
  std::string path_;
  std::string source_;
};

// Parses `text` and checks "schema" and "version". `source` names the file in errors.
// Every reader's message for text that is not JSON, or not this kind of file, comes from here.
// Profiles, plans and reports are read whole this way, not with simdjson as the big columns
// of a trace are (core/src/trace.cpp): they are kilobytes, parse in well under a
// millisecond, and every member of them goes through JsonView, which needs the DOM anyway.
json parse_document(std::string_view text, const std::string& source, std::string_view schema,
                    int version);
json parse_json(std::string_view text, const std::string& source);
void check_header(const json& doc, const std::string& source, std::string_view schema, int version);

// A document header: {"schema": ..., "version": ...}.
json document_header(std::string_view schema, int version);

}  // namespace tidemark::detail
