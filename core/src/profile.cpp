#include "tidemark/core/profile.hpp"

#include <fmt/format.h>

#include "config_json.hpp"
#include "tidemark/core/files.hpp"

namespace tidemark {

using detail::json;
using detail::JsonView;

double ChainProfile::fixed_ms() const {
  double staged = 0;
  for (const auto& l : stages) staged += l.forward_ms + l.backward_ms;
  return step_ms > staged ? step_ms - staged : 0.0;
}

namespace {

// backward_held_peak_bytes came with selective recompute; earlier profiles lack it, and it
// can never be below the plain backward peak.
std::uint64_t held_peak(const JsonView& v, std::uint64_t backward_peak) {
  auto held = v.get("backward_held_peak_bytes");
  return held ? std::max(held->u64(), backward_peak) : backward_peak;
}

json variant_to_json(const StageVariant& v) {
  return json{{"name", v.name},
              {"saved_bytes", v.saved_bytes},
              {"forward_peak_bytes", v.forward_peak_bytes},
              {"backward_peak_bytes", v.backward_peak_bytes},
              {"backward_held_peak_bytes", v.backward_held_peak_bytes},
              {"forward_ms", v.forward_ms},
              {"backward_ms", v.backward_ms}};
}

StageVariant variant_from_json(const JsonView& v) {
  StageVariant out;
  out.name = v.at("name").str();
  if (out.name.empty()) v.at("name").fail("variant name is empty");
  out.saved_bytes = v.at("saved_bytes").u64();
  out.forward_peak_bytes = v.at("forward_peak_bytes").u64();
  out.backward_peak_bytes = v.at("backward_peak_bytes").u64();
  out.backward_held_peak_bytes = held_peak(v, out.backward_peak_bytes);
  out.forward_ms = v.at("forward_ms").non_negative();
  out.backward_ms = v.at("backward_ms").non_negative();
  return out;
}

}  // namespace

std::string Sharding::describe() const {
  if (!known()) return "ranks not recorded";
  std::string s = fmt::format("{} rank{}", ranks, ranks == 1 ? "" : "s");
  if (zero > 0) s += fmt::format(", ZeRO-{}", zero);
  return s;
}

std::string profile_to_json(const ChainProfile& p) {
  json doc = detail::document_header(kProfileSchema, kProfileVersion);
  doc["model"] = p.model;
  if (p.model == "gpt") doc["config"] = detail::config_to_json(p.config);
  doc["digest"] = p.digest;
  doc["dtype"] = p.config.dtype;
  doc["device"] = p.config.device;
  doc["torch_version"] = p.torch_version;
  doc["timing"] = p.timing;
  doc["warmup"] = p.warmup;
  doc["iters"] = p.iters;
  doc["static_bytes"] = json{{"parameters", p.static_bytes.parameters},
                             {"gradients", p.static_bytes.gradients},
                             {"optimizer_state", p.static_bytes.optimizer_state},
                             {"inputs", p.static_bytes.inputs},
                             {"other", p.static_bytes.other},
                             {"resident", p.static_bytes.resident()}};
  if (p.sharding.known()) {
    doc["sharding"] = json{{"ranks", p.sharding.ranks},
                           {"zero", p.sharding.zero},
                           {"reduce_buffer_bytes", p.sharding.reduce_buffer_bytes}};
  }
  if (p.host_link.measured()) {
    doc["host_link"] = json{{"d2h_bytes_per_ms", p.host_link.d2h_bytes_per_ms},
                            {"h2d_bytes_per_ms", p.host_link.h2d_bytes_per_ms}};
  }
  doc["peak_bytes"] = p.peak_bytes;
  doc["step_ms"] = p.step_ms;
  doc["optimizer_peak_bytes"] = p.optimizer_peak_bytes;
  doc["optimizer_ms"] = p.optimizer_ms;
  doc["checkpoint_state_bytes"] = p.checkpoint_state_bytes;
  json layers = json::array();
  for (const auto& l : p.stages) {
    json j{{"name", l.name},
           {"kind", l.kind},
           {"input_bytes", l.input_bytes},
           {"output_bytes", l.output_bytes},
           {"saved_bytes", l.saved_bytes},
           {"param_bytes", l.param_bytes},
           {"input_requires_grad", l.input_requires_grad},
           {"forward_peak_bytes", l.forward_peak_bytes},
           {"forward_nograd_peak_bytes", l.forward_nograd_peak_bytes},
           {"backward_peak_bytes", l.backward_peak_bytes},
           {"backward_held_peak_bytes", l.backward_held_peak_bytes},
           {"forward_ms", l.forward_ms},
           {"forward_nograd_ms", l.forward_nograd_ms},
           {"backward_ms", l.backward_ms}};
    if (!l.variants.empty()) {
      json vs = json::array();
      for (const auto& v : l.variants) vs.push_back(variant_to_json(v));
      j["variants"] = std::move(vs);
    }
    layers.push_back(std::move(j));
  }
  doc["layers"] = std::move(layers);
  return doc.dump(1) + "\n";
}

ChainProfile profile_from_json(const std::string& text, const std::string& source) {
  json doc = detail::parse_document(text, source, kProfileSchema, kProfileVersion);
  JsonView root(doc, "", source);
  ChainProfile p;
  if (auto m = root.get("model")) p.model = m->str();
  p.digest = root.at("digest").str();
  if (p.model == "gpt") {
    p.config = detail::config_from_json(root.at("config"));
    if (p.digest != p.config.digest()) {
      root.at("digest").fail(fmt::format("does not match the config (expected {}); the file was "
                                         "edited or made by another tidemark",
                                         p.config.digest()));
    }
  }
  if (auto t = root.get("torch_version")) p.torch_version = t->str();
  if (auto t = root.get("timing")) p.timing = t->str();
  if (auto w = root.get("warmup")) p.warmup = static_cast<int>(w->i64());
  if (auto i = root.get("iters")) p.iters = static_cast<int>(i->i64());
  JsonView sb = root.at("static_bytes");
  p.static_bytes.parameters = sb.at("parameters").u64();
  p.static_bytes.gradients = sb.at("gradients").u64();
  p.static_bytes.optimizer_state = sb.at("optimizer_state").u64();
  p.static_bytes.inputs = sb.at("inputs").u64();
  if (auto o = sb.get("other")) p.static_bytes.other = o->u64();
  if (auto sh = root.get("sharding")) p.sharding = detail::sharding_from_json(*sh);
  if (auto h = root.get("host_link")) {
    for (const char* key : {"d2h_bytes_per_ms", "h2d_bytes_per_ms"}) {
      if (h->at(key).non_negative() <= 0) h->at(key).fail("must be a positive bandwidth (bytes per ms)");
    }
    p.host_link.d2h_bytes_per_ms = h->at("d2h_bytes_per_ms").non_negative();
    p.host_link.h2d_bytes_per_ms = h->at("h2d_bytes_per_ms").non_negative();
  }
  p.peak_bytes = root.at("peak_bytes").u64();
  if (p.peak_bytes == 0) root.at("peak_bytes").fail("must be positive");
  p.step_ms = root.at("step_ms").non_negative();
  p.optimizer_peak_bytes = root.at("optimizer_peak_bytes").u64();
  p.optimizer_ms = root.at("optimizer_ms").non_negative();
  if (auto c = root.get("checkpoint_state_bytes")) p.checkpoint_state_bytes = c->u64();
  auto layers = root.items("layers");
  if (layers.empty()) root.at("layers").fail("has zero stages; a profile needs at least one");
  for (const auto& l : layers) {
    StageProfile s;
    s.name = l.at("name").str();
    s.kind = l.at("kind").str();
    s.input_bytes = l.at("input_bytes").u64();
    s.output_bytes = l.at("output_bytes").u64();
    s.saved_bytes = l.at("saved_bytes").u64();
    s.param_bytes = l.at("param_bytes").u64();
    if (auto r = l.get("input_requires_grad")) s.input_requires_grad = r->boolean();
    s.forward_peak_bytes = l.at("forward_peak_bytes").u64();
    s.forward_nograd_peak_bytes = l.at("forward_nograd_peak_bytes").u64();
    s.backward_peak_bytes = l.at("backward_peak_bytes").u64();
    s.backward_held_peak_bytes = held_peak(l, s.backward_peak_bytes);
    s.forward_ms = l.at("forward_ms").non_negative();
    s.forward_nograd_ms = l.at("forward_nograd_ms").non_negative();
    s.backward_ms = l.at("backward_ms").non_negative();
    if (auto vs = l.get("variants")) {
      for (const auto& v : vs->items()) s.variants.push_back(variant_from_json(v));
    }
    p.stages.push_back(std::move(s));
  }
  if (p.model == "gpt" && static_cast<std::int64_t>(p.stages.size()) != p.config.stages()) {
    root.at("layers").fail(fmt::format("has {} stages but config.layers {} means {} (embedding, "
                                       "blocks, head)",
                                       p.stages.size(), p.config.layers, p.config.stages()));
  }
  return p;
}

ChainProfile read_profile(const std::string& path) {
  return profile_from_json(read_text_file(path, "profile"), path);
}

void write_profile(const std::string& path, const ChainProfile& profile) {
  write_file_atomic(path, profile_to_json(profile), "profile");
}

}  // namespace tidemark
