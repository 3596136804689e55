// ZeRO on c10d (Note [ZeRO] in runtime/zero.hpp): 2 ranks at every ZeRO stage train like one
// process, with and without checkpointing; each rank's floor falls as the stages promise; a
// plan profiled for a sharding holds its per-rank budget; shards save and resume exactly,
// and are refused for another sharding; bad flags and plans are refused before any rank
// starts; a rank that dies ends the job. Runs the tidemark binary on Gloo.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "cli/run.hpp"
#include "grads.hpp"
#include "tidemark/runtime/gpt.hpp"

using namespace tidemark;
using namespace tidemark::testing;

namespace {

// Naive attention and no dropout, as the data-parallel equivalence test (whose tolerances
// these are).
const std::string kModel = "--layers 2 --d-model 32 --heads 2 --seq 32 --batch 4 --dropout 0 --attention naive";

ModelConfig model_config() {
  ModelConfig c;
  c.layers = 2;
  c.d_model = 32;
  c.heads = 2;
  c.seq = 32;
  return c;
}

nlohmann::json report(const std::string& path) { return nlohmann::json::parse(slurp(path)); }

torch::serialize::InputArchive newest_state(const std::string& dir) {
  const std::string latest = slurp(dir + "/LATEST");
  torch::serialize::InputArchive ar;
  ar.load_from(dir + "/" + latest.substr(0, latest.find(' ')));
  return ar;
}

// The parameters, stage by stage, of the newest state in `dirs`: one directory of a plain
// run, or every rank's of a ZeRO run (each rank saved its shard of every stage; the shards
// laid end to end are the stage's parameters, padded).
std::vector<torch::Tensor> stage_parameters(const std::vector<std::string>& dirs) {
  runtime::GPT m(model_config());
  std::vector<torch::Tensor> out;
  if (dirs.size() == 1) {
    auto ar = newest_state(dirs[0]);
    torch::serialize::InputArchive model_ar;
    ar.read("model", model_ar);
    m->load(model_ar);
    for (int k = 0; k < m->num_stages(); ++k) {
      for (const auto& p : m->stage_parameters(k)) out.push_back(p.detach().clone());
    }
    return out;
  }
  std::vector<torch::serialize::InputArchive> ranks;
  for (const auto& d : dirs) ranks.push_back(newest_state(d));
  for (int k = 0; k < m->num_stages(); ++k) {
    std::vector<torch::Tensor> parts;
    for (auto& ar : ranks) {
      torch::Tensor shard;
      ar.read(fmt::format("shard/{}", k), shard, true);
      parts.push_back(shard);
    }
    const torch::Tensor flat = torch::cat(parts);
    std::int64_t offset = 0;
    for (const auto& p : m->stage_parameters(k)) {
      out.push_back(flat.narrow(0, offset, p.numel()).view_as(p).clone());
      offset += p.numel();
    }
    // The padding stays zero through every step (zero gradients, decayed zeros).
    CHECK(flat.narrow(0, offset, flat.numel() - offset).abs().sum().item<double>() == 0);
  }
  return out;
}


std::vector<double> losses(const std::string& report_path) {
  return report(report_path)["losses"].get<std::vector<double>>();
}

}  // namespace

TEST_CASE("2 ranks at ZeRO 1, 2 and 3 train like 1 process with the global batch", "[torch][zero][gloo]") {
  for (const std::string checkpointing : {"", " --gradient-checkpointing"}) {
    const std::string dir = scratch_dir("zero-equivalence");
    const std::string common = "train " + kModel + checkpointing + " --steps 10 -q";
    Run one = run_tidemark(common + " --save " + dir + "/one --report " + dir + "/one.json");
    INFO(one.output);
    REQUIRE(one.rc == 0);
    const auto l1 = losses(dir + "/one.json");
    const auto p1 = stage_parameters({dir + "/one"});
    for (int zero : {1, 2, 3}) {
      INFO("checkpointing:" << checkpointing << ", ZeRO-" << zero);
      const std::string name = fmt::format("z{}", zero);
      Run two = run_tidemark(fmt::format("{} --nproc 2 --zero {} --save {}/{} --report {}/{}.json", common, zero, dir,
                                         name, dir, name));
      INFO(two.output);
      REQUIRE(two.rc == 0);
      const auto r2 = report(dir + "/" + name + ".json");
      CHECK(r2["zero"] == zero);
      const auto l2 = r2["losses"].get<std::vector<double>>();
      REQUIRE(l2.size() == l1.size());
      for (size_t i = 0; i < l1.size(); ++i) CHECK(std::abs(l1[i] - l2[i]) <= 1e-5 * std::abs(l1[i]));
      const auto p2 = stage_parameters({dir + "/" + name + "/rank0", dir + "/" + name + "/rank1"});
      CHECK(max_relative_difference(p1, p2) < 1e-4);
    }
  }
}

TEST_CASE("each ZeRO stage cuts a rank's floor by what it shards", "[torch][zero][gloo]") {
  // Wide enough that parameters dwarf the batch and the padding.
  const std::string model = "--layers 2 --d-model 96 --heads 2 --seq 16 --batch 4 --dropout 0 --attention naive";
  ModelConfig c;
  c.layers = 2;
  c.d_model = 96;
  c.heads = 2;
  c.seq = 16;
  const double P = static_cast<double>(runtime::GPT(c)->parameter_count()) * 4;  // fp32 bytes
  const std::string dir = scratch_dir("zero-floor");
  // Per rank, in parameter bytes P (Note [ZeRO]): plain data parallel keeps parameters,
  // gradients, buckets and AdamW's two moments; each stage shards more of it over 2 ranks.
  const double expected[] = {5.0, 1 + 1 + 2.0 / 2, 1 + 0.5 + 2.0 / 2, 0.5 + 0.5 + 2.0 / 2};
  for (int zero = 0; zero <= 3; ++zero) {
    INFO("ZeRO-" << zero);
    Run r = run_tidemark(fmt::format("train {} --nproc 2 --zero {} --steps 2 -q --report {}/z{}.json", model, zero,
                                     dir, zero));
    INFO(r.output);
    REQUIRE(r.rc == 0);
    for (const auto& floor : report(fmt::format("{}/z{}.json", dir, zero))["rank_floor_bytes"]) {
      CHECK(std::abs(floor.get<double>() - expected[zero] * P) <= 0.02 * expected[zero] * P);
    }
  }
}

TEST_CASE("a plan profiled for a sharding holds each rank's budget, and only for it", "[torch][zero][ddp][gloo]") {
  const std::string model = "--layers 3 --d-model 32 --heads 2 --seq 64 --batch 8 --dropout 0.1";
  // ZeRO-0 is plain data parallel, profiled by one process standing for a rank.
  for (int zero : {0, 2, 3}) {
    INFO("ZeRO-" << zero);
    const std::string dir = scratch_dir(fmt::format("zero-plan-{}", zero));
    const std::string z = fmt::format(" --nproc 2 --zero {}", zero);
    Run prof = run_tidemark("profile " + model + z + " --warmup 1 --iters 1 -q -o " + dir + "/p.json");
    INFO(prof.output);
    REQUIRE(prof.rc == 0);
    const auto p = nlohmann::json::parse(slurp(dir + "/p.json"));
    CHECK(p["sharding"]["ranks"] == 2);
    CHECK(p["sharding"]["zero"] == zero);
    Run plan = run_tidemark("plan " + dir + "/p.json --budget 0.6 -o " + dir + "/plan.json");
    INFO(plan.output);
    REQUIRE(plan.rc == 0);
    Run train = run_tidemark("train " + model + z + " --steps 3 -q --plan " + dir + "/plan.json --report " + dir +
                             "/r.json --trace " + dir + "/t.json");
    INFO(train.output);
    REQUIRE(train.rc == 0);
    const auto r = report(dir + "/r.json");
    const auto budget = r["budget_bytes"].get<std::uint64_t>();
    const auto predicted = r["predicted"]["peak_bytes"].get<double>();
    REQUIRE(r["rank_peak_bytes"].size() == 2);
    for (const auto& peak : r["rank_peak_bytes"]) {
      CHECK(peak.get<std::uint64_t>() <= budget);
      CHECK(std::abs(peak.get<double>() - predicted) <= 0.05 * predicted);
    }
    CHECK(r["comm_wait_ms"].size() == 3);
    CHECK(file_exists(dir + "/t.rank0.json"));  // one trace per rank
    CHECK(file_exists(dir + "/t.rank1.json"));
    // The same plan for another sharding is refused before any rank starts.
    Run other = run_tidemark("train " + model + " --nproc 2 --zero 1 --steps 1 -q --plan " + dir + "/plan.json");
    INFO(other.output);
    CHECK(other.rc == 2);
    CHECK(error_lines(other.output) == 1);
    CHECK(other.output.find(zero ? fmt::format("the plan was made for 2 ranks, ZeRO-{} (", zero)
                                 : std::string("the plan was made for 2 ranks (")) != std::string::npos);
    CHECK(other.output.find("[rank") == std::string::npos);
  }
}

TEST_CASE("ZeRO shards save and resume exactly, and only into the same sharding", "[torch][zero][gloo]") {
  const std::string dir = scratch_dir("zero-resume");
  const std::string model = "--layers 2 --d-model 32 --heads 2 --seq 32 --batch 4 --dropout 0.1";
  const std::string common = "train " + model + " --nproc 2 --zero 3 -q";
  Run whole = run_tidemark(common + " --steps 6 --save " + dir + "/whole --report " + dir + "/whole.json");
  INFO(whole.output);
  REQUIRE(whole.rc == 0);
  Run first = run_tidemark(common + " --steps 3 --save " + dir + "/split");
  INFO(first.output);
  REQUIRE(first.rc == 0);
  Run rest = run_tidemark(common + " --steps 6 --resume " + dir + "/split --save " + dir + "/split --report " + dir +
                          "/rest.json");
  INFO(rest.output);
  REQUIRE(rest.rc == 0);
  const auto lw = losses(dir + "/whole.json"), lr = losses(dir + "/rest.json");
  REQUIRE(lw.size() == 6);
  REQUIRE(lr.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(lr[i] == lw[i + 3]);
  CHECK(max_relative_difference(stage_parameters({dir + "/whole/rank0", dir + "/whole/rank1"}),
                                stage_parameters({dir + "/split/rank0", dir + "/split/rank1"})) == 0);

  Run other = run_tidemark("train " + model + " --nproc 2 --zero 2 -q --steps 8 --resume " + dir + "/split");
  INFO(other.output);
  CHECK(other.rc == 2);
  CHECK(other.output.find("was saved by ZeRO-3, rank 0 of 2 but this rank is ZeRO-2, rank 0 of 2") !=
        std::string::npos);
  CHECK(error_lines(other.output) == 1);

  // On 4 ranks the shards would be cut otherwise: refused, not re-sharded.
  Run four = run_tidemark("train " + model + " --nproc 4 --zero 3 -q --steps 8 --resume " + dir + "/split");
  INFO(four.output);
  CHECK(four.rc == 2);
  CHECK(error_lines(four.output) == 1);
}

TEST_CASE("ZeRO flags are checked before any rank starts", "[torch][zero]") {
  Run alone = run_tidemark("train " + kModel + " --zero 2 --steps 1");
  INFO(alone.output);
  CHECK(alone.rc == 2);
  CHECK(error_lines(alone.output) == 1);
  CHECK(alone.output.find("--zero 2 shards the training state over data-parallel ranks") != std::string::npos);
  Run profile_alone = run_tidemark("profile " + kModel + " --zero 1 -o /dev/null");
  INFO(profile_alone.output);
  CHECK(profile_alone.rc == 2);
  CHECK(profile_alone.output.find("add --nproc 2") != std::string::npos);
  Run four = run_tidemark("train " + kModel + " --nproc 2 --zero 4 --steps 1");
  INFO(four.output);
  CHECK(four.rc == 2);
  CHECK(four.output.find("--zero") != std::string::npos);
}

TEST_CASE("a ZeRO rank that dies stops the job with an error, not a hang", "[torch][zero][gloo]") {
  Run r = run_tidemark_with_fault("train-step:rank1@3", "train " + kModel + " --nproc 2 --zero 3 --steps 20 -q");
  INFO(r.output);
  CHECK(r.rc == 1);
  CHECK(r.output.find("error: rank 1 of 2 was killed by signal 9") != std::string::npos);
}

namespace {

// A one-rank job under torchrun's environment runs every collective of every ZeRO stage with
// nothing to shard: it must train like the plain process (the only difference is the order
// in which the gradient norm is summed).
void one_rank_jobs_train_like_one_process(const std::string& device) {
  const std::string dir = scratch_dir("zero-one-rank-" + device);
  const std::string common = "train --device " + device + " " + kModel + " --steps 10 -q";
  Run one = run_tidemark(common + " --report " + dir + "/one.json");
  INFO(one.output);
  REQUIRE(one.rc == 0);
  const auto l1 = losses(dir + "/one.json");
  for (int zero : {1, 2, 3}) {
    INFO("ZeRO-" << zero);
    Run solo = run_command(fmt::format("WORLD_SIZE=1 RANK=0 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT={} {} {} "
                                       "--zero {} --report {}/z{}.json",
                                       random_port(), tidemark_path(), common, zero, dir,
                                       zero));
    INFO(solo.output);
    REQUIRE(solo.rc == 0);
    const auto ls = losses(fmt::format("{}/z{}.json", dir, zero));
    REQUIRE(ls.size() == l1.size());
    for (size_t i = 0; i < l1.size(); ++i) CHECK(std::abs(l1[i] - ls[i]) <= 1e-6 * std::abs(l1[i]));
  }
}

}  // namespace

TEST_CASE("a one-rank ZeRO job on Gloo trains like one process", "[torch][zero][gloo]") {
  one_rank_jobs_train_like_one_process("cpu");
}

TEST_CASE("a one-rank ZeRO job on NCCL trains like one process", "[torch][zero][cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA GPU visible to LibTorch: skipped");
    return;
  }
  one_rank_jobs_train_like_one_process("cuda");
}
