// Saved training states (Note [training state]): resuming reproduces the uninterrupted run
// bit for bit, with dropout and with checkpointing (whose recompute replays the generator),
// and a state of another format version is refused.
#include <filesystem>
#include <fstream>

#include "catch.hpp"
#include "cli/run.hpp"
#include "common/configs.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/core/files.hpp"
#include "tidemark/runtime/training_state.hpp"

using namespace tidemark;
using namespace tidemark::runtime;
namespace fs = std::filesystem;

namespace {

// A state directory that does not exist yet, as save_training_state finds it on a first save.
std::string fresh_dir(const std::string& name) { return tidemark::testing::scratch_dir(name) + "/state"; }

std::vector<double> losses(Trainer& t) {
  std::vector<double> out;
  while (t.steps_done() < t.config().steps) {
    INFO("in step " << t.steps_done());  // a crash report names the step it died in
    out.push_back(t.step().loss);
  }
  return out;
}

TrainingConfig config(int steps, bool checkpointing) {
  TrainingConfig c;
  c.model = testing::gpt_config(3, 32, 2, 32, 2, 0.3);
  c.steps = steps;
  c.gradient_checkpointing = checkpointing;
  return c;
}

}  // namespace

TEST_CASE("resuming a saved state reproduces the uninterrupted run bit for bit", "[torch][resume]") {
  for (bool checkpointing : {false, true}) {
    INFO("checkpointing " << checkpointing);
    Trainer whole(config(8, checkpointing));
    const std::vector<double> expected = losses(whole);
    INFO("trained the whole run");

    const std::string dir = fresh_dir("state-exact");
    {
      Trainer first(config(5, checkpointing));
      losses(first);
      INFO("trained the first part");
      save_training_state(dir, first);
    }
    INFO("saved the first part");
    Trainer second(config(8, checkpointing));
    REQUIRE(resume_training_state(dir, second) == 5);
    INFO("resumed");
    const std::vector<double> rest = losses(second);
    REQUIRE(rest.size() == 3);
    for (int i = 0; i < 3; ++i) CHECK(rest[i] == expected[5 + i]);
    // Parameters too, not only the losses.
    auto a = whole.model()->parameters(), b = second.model()->parameters();
    for (size_t i = 0; i < a.size(); ++i) CHECK(torch::equal(a[i], b[i]));
  }
}

TEST_CASE("a state of another format version is refused", "[torch][resume]") {
  const std::string dir = fresh_dir("state-version");
  Trainer t(config(1, false));
  losses(t);
  const std::string path = save_training_state(dir, t);
  // Rewrite it as version 2, with a LATEST that vouches for the new bytes.
  torch::serialize::OutputArchive ar;
  ar.write("meta/schema", c10::IValue(std::string(kStateSchema)));
  ar.write("meta/version", c10::IValue(static_cast<std::int64_t>(kStateVersion + 1)));
  std::ostringstream bytes;
  ar.save_to(bytes);
  write_file_atomic(path, bytes.str());
  const std::string name = fs::path(path).filename().string();
  write_file_atomic(dir + "/LATEST", name + " " + std::to_string(bytes.str().size()) + " " + fnv1a_hex(bytes.str()));
  Trainer u(config(2, false));
  try {
    resume_training_state(dir, u);
    FAIL("resumed a version-2 state");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()).find("has version 2; this tidemark reads version 1") != std::string::npos);
  }
  CHECK(u.steps_done() == 0);
}
