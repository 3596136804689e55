#include "tidemark/runtime/training_state.hpp"

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fmt/format.h>
#include <regex>
#include <sstream>
#include <sys/stat.h>
#include <torch/version.h>
#include <unistd.h>
#include <vector>

#include "tidemark/core/error.hpp"
#include "tidemark/core/fault.hpp"
#include "tidemark/core/files.hpp"
#include "rng_state.hpp"

namespace tidemark::runtime {
namespace {

const char* kLatest = "LATEST";

std::string join(const std::string& dir, const std::string& name) { return dir + "/" + name; }

std::string state_name(int step) { return fmt::format("state-{:08d}.pt", step); }

// Steps of the complete states in `dir`, and the names of leftover temporary files.
void scan(const std::string& dir, std::vector<int>& steps, std::vector<std::string>& temps) {
  static const std::regex state_re(R"(state-(\d{8})\.pt)");
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    std::smatch m;
    if (std::regex_match(name, m, state_re)) {
      steps.push_back(std::stoi(m[1]));
    } else if (name.find(".tmp.") != std::string::npos) {
      temps.push_back(name);
    }
  }
  ::closedir(d);
  std::sort(steps.begin(), steps.end());
}

void ensure_dir(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw UserError(fmt::format("--save '{}' exists and is not a directory", dir));
    return;
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    throw UserError(fmt::format("--save directory '{}' cannot be created: {} (does its parent exist?)", dir,
                                std::strerror(errno)));
  }
}

struct Latest {
  std::string name;
  std::uint64_t size = 0;
  std::string digest;
};

Latest read_latest(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw UserError(fmt::format("--resume '{}' is not a directory of saved states (made by train --save)", dir));
  }
  const std::string path = join(dir, kLatest);
  if (::stat(path.c_str(), &st) != 0) {
    throw UserError(fmt::format("--resume '{}' holds no saved state ({} is missing); save one with train --save", dir,
                                path));
  }
  std::istringstream in(read_text_file(path, "state index"));
  Latest l;
  std::string extra;
  if (!(in >> l.name >> l.size >> l.digest) || (in >> extra) ||
      !std::regex_match(l.name, std::regex(R"(state-\d{8}\.pt)")) || l.digest.size() != 16) {
    throw UserError(fmt::format("state index '{}' is malformed: expected 'state-NNNNNNNN.pt SIZE DIGEST'", path));
  }
  return l;
}

std::string read_meta(torch::serialize::InputArchive& ar, const std::string& key, const std::string& path) {
  c10::IValue v;
  if (!ar.try_read("meta/" + key, v) || !v.isString()) {
    throw FormatError(fmt::format("state '{}' has no '{}': not a {} file, or a damaged one", path, key, kStateSchema));
  }
  return v.toStringRef();
}

std::int64_t read_meta_int(torch::serialize::InputArchive& ar, const std::string& key, const std::string& path) {
  c10::IValue v;
  if (!ar.try_read("meta/" + key, v) || !v.isInt()) {
    throw FormatError(fmt::format("state '{}' has no '{}': not a {} file, or a damaged one", path, key, kStateSchema));
  }
  return v.toInt();
}

void check_same(const std::string& what, const std::string& saved, const std::string& now, const std::string& path) {
  if (saved == now) return;
  throw UserError(fmt::format("state '{}' was saved for {} '{}' but this run has '{}'; resume with the same "
                              "settings, or start a new run without --resume",
                              path, what, saved, now));
}

}  // namespace

void prepare_state_dir(const std::string& dir) {
  ensure_dir(dir);
  check_writable(join(dir, kLatest), "--save");
}

StateIdentity StateIdentity::of(const Trainer& trainer) {
  const TrainingConfig& c = trainer.config();
  StateIdentity id;
  id.config = fmt::format("{}, seed {}", c.model.describe(), c.model.seed);
  id.checkpointing = c.plan ? "plan " + describe(*c.plan) : (c.gradient_checkpointing ? "uniform" : "none");
  id.data = trainer.data().source();
  return id;
}

std::string save_training_state(const std::string& dir, Trainer& trainer) {
  ensure_dir(dir);
  const int step = trainer.steps_done();
  const StateIdentity id = StateIdentity::of(trainer);

  torch::serialize::OutputArchive ar;
  ar.write("meta/schema", c10::IValue(std::string(kStateSchema)));
  ar.write("meta/version", c10::IValue(kStateVersion));
  ar.write("meta/step", c10::IValue(static_cast<std::int64_t>(step)));
  ar.write("meta/config", c10::IValue(id.config));
  ar.write("meta/checkpointing", c10::IValue(id.checkpointing));
  ar.write("meta/data", c10::IValue(id.data));
  ar.write("meta/torch_version", c10::IValue(std::string(TORCH_VERSION)));
  torch::serialize::OutputArchive model_ar, optim_ar;
  if (const ZeroSharding* zero = trainer.zero()) {
    // Note [ZeRO]: a rank saves its shards (the parameters are the same on every rank, or
    // not whole on any); the buffers follow from the config.
    ar.write("meta/sharding", c10::IValue(zero->layout()));
    for (std::size_t i = 0; i < zero->shards().size(); ++i) {
      ar.write(fmt::format("shard/{}", i), zero->shards()[i].detach(), /*is_buffer=*/true);
    }
  } else {
    trainer.model()->save(model_ar);
    ar.write("model", model_ar);
  }
  trainer.optimizer().save(optim_ar);
  ar.write("optimizer", optim_ar);
  const RngSnapshot rng = take_rng(trainer.device());
  ar.write("rng/cpu", rng.cpu, /*is_buffer=*/true);
  if (rng.cuda.defined()) ar.write("rng/cuda", rng.cuda, true);
  std::ostringstream bytes;
  ar.save_to(bytes);
  const std::string content = bytes.str();

  // Leftovers of a save that was interrupted: nothing refers to them.
  std::vector<int> steps;
  std::vector<std::string> temps;
  scan(dir, steps, temps);
  for (const auto& t : temps) ::unlink(join(dir, t).c_str());

  const std::string name = state_name(step);
  write_file_atomic(join(dir, name), content, "training state");
  write_file_atomic(join(dir, kLatest), fmt::format("{} {} {}\n", name, content.size(), fnv1a_hex(content)),
                    "state index");
  fault_point("state:before-cleanup");
  // Keep the previous state too: Note [training state].
  for (size_t i = 0; i + 1 < steps.size(); ++i) {
    if (steps[i] < step) ::unlink(join(dir, state_name(steps[i])).c_str());
  }
  return join(dir, name);
}

int resume_training_state(const std::string& dir, Trainer& trainer) {
  const Latest latest = read_latest(dir);
  const std::string path = join(dir, latest.name);
  const std::string content = read_text_file(path, "training state");
  if (content.size() != latest.size || fnv1a_hex(content) != latest.digest) {
    throw FormatError(fmt::format("training state '{}' is damaged: {} bytes with digest {}, but {} recorded {} "
                                  "bytes with digest {}",
                                  path, content.size(), fnv1a_hex(content), join(dir, kLatest), latest.size,
                                  latest.digest));
  }
  torch::serialize::InputArchive ar;
  try {
    std::istringstream in(content);
    ar.load_from(in, trainer.device());
  } catch (const c10::Error& e) {
    throw FormatError(fmt::format("training state '{}' cannot be read as a LibTorch archive: {}", path,
                                  e.what_without_backtrace()));
  }
  const std::string schema = read_meta(ar, "schema", path);
  if (schema != kStateSchema) {
    throw FormatError(fmt::format("'{}' is a '{}' file, expected {}", path, schema, kStateSchema));
  }
  const std::int64_t version = read_meta_int(ar, "version", path);
  if (version != kStateVersion) {
    throw FormatError(fmt::format("training state '{}' has version {}; this tidemark reads version {}", path,
                                  version, kStateVersion));
  }
  const StateIdentity now = StateIdentity::of(trainer);
  {
    c10::IValue saved;
    const std::string was = ar.try_read("meta/sharding", saved) && saved.isString() ? saved.toStringRef() : "no ZeRO";
    const std::string is = trainer.zero() ? trainer.zero()->layout() : "no ZeRO";
    if (was != is) {
      throw UserError(fmt::format("state '{}' was saved by {} but this rank is {}; resume with the --nproc and "
                                  "--zero it was saved with (a sharded state is not re-sharded)",
                                  path, was, is));
    }
  check_same("model", read_meta(ar, "config", path), now.config, path);
  check_same("checkpointing", read_meta(ar, "checkpointing", path), now.checkpointing, path);
  check_same("corpus", read_meta(ar, "data", path), now.data, path);
  }
  const std::int64_t step = read_meta_int(ar, "step", path);
  if (step < 0 || step > 1'000'000'000) throw FormatError(fmt::format("training state '{}' has step {}", path, step));

  try {
    torch::serialize::InputArchive model_ar, optim_ar;
    if (ZeroSharding* zero = trainer.zero()) {
      std::vector<torch::Tensor> shards(zero->shards().size());
      for (std::size_t i = 0; i < shards.size(); ++i) ar.read(fmt::format("shard/{}", i), shards[i], true);
      zero->load_shards(shards);
    } else {
      ar.read("model", model_ar);
      trainer.model()->load(model_ar);
    }
    ar.read("optimizer", optim_ar);
    trainer.optimizer().load(optim_ar);
    RngSnapshot rng;
    ar.read("rng/cpu", rng.cpu, /*is_buffer=*/true);
    rng.cpu = rng.cpu.cpu();
    if (trainer.device().is_cuda()) {
      ar.read("rng/cuda", rng.cuda, true);
      rng.cuda = rng.cuda.cpu();
      rng.cuda_device = trainer.device();
    }
    restore_rng(rng);
  } catch (const c10::Error& e) {
    throw FormatError(fmt::format("training state '{}' does not fit this model: {}", path, e.what_without_backtrace()));
  }
  trainer.set_steps_done(static_cast<int>(step));
  return static_cast<int>(step);
}

}  // namespace tidemark::runtime
