// Data parallel against one process, side by side in one run: the same global batch trained
// by 1 process and by N ranks (tidemark train --nproc N; Gloo on the CPU, NCCL on CUDA),
// alternating rounds so drift evens out. Per configuration: median step time, each rank's
// peak, and the milliseconds rank 0 waited for gradient all-reduces after its backward
// (communication backward did not hide). --nproc 1 runs a one-rank job under torchrun's
// environment: on a machine with one GPU, what the NCCL path costs with nothing to average.
//
//   build/bench/ddp/bench_ddp [--nproc 2] [--rounds 3] [--steps 8] [--model "--layers 8 ..."]
//   build/bench/ddp/bench_ddp --device cuda --nproc 1 --model "--layers 12 --d-model 1024 ..."
//
// With --zero (Note [ZeRO]) it sets the ZeRO stages side by side instead, every one with N
// ranks at the same global batch, against plain data parallel (ZeRO-0): per-rank floor
// (parameters, gradients, optimizer state once backward is reduced) and peak, step time,
// communication wait. --zero-plan F adds ZeRO-3 trained with the optimal plan for a per-rank
// budget of F times plain data parallel's measured peak (profiled at ZeRO-3 on N ranks).
//
//   build/bench/ddp/bench_ddp --zero 0,1,2,3 --zero-plan 0.6 [--rounds 3] [--model ...]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <vector>

#include "tidemark/core/bytes.hpp"
#include "tidemark/core/report.hpp"

using namespace tidemark;

namespace {

struct Sample {
  std::vector<double> step_ms, comm_ms;
  std::vector<std::uint64_t> rank_peaks, rank_floors;
  std::uint64_t budget = 0;
};

std::string run_command(const std::string& cmd) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p && (n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (!p || ::pclose(p) != 0) throw std::runtime_error(fmt::format("'{}' failed:\n{}", cmd, out));
  return out;
}

// nproc 0: one plain process; 1: a one-rank job under torchrun's environment; N: --nproc N.
// `extra`: more train flags (--zero K, --plan P).
Sample run(const std::string& model, int nproc, int steps, const std::string& report, const std::string& extra = "") {
  std::string env, launch;
  if (nproc == 1) {
    std::mt19937 rng(std::random_device{}());
    env = fmt::format("WORLD_SIZE=1 RANK=0 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT={} ",
                      20000 + static_cast<int>(rng() % 20000));
  } else if (nproc > 1) {
    launch = fmt::format(" --nproc {}", nproc);
  }
  run_command(fmt::format("{}{} train {} --steps {}{}{} -q --report {}", env, TIDEMARK_CLI, model, steps, launch,
                          extra, report));
  std::ifstream in(report);
  std::stringstream ss;
  ss << in.rdbuf();
  const auto r = nlohmann::json::parse(ss.str());
  Sample s;
  const auto ms = r["step_ms"].get<std::vector<double>>();
  s.step_ms.assign(ms.begin() + 1, ms.end());  // the first step allocates and warms caches
  if (r.contains("comm_wait_ms")) {
    const auto c = r["comm_wait_ms"].get<std::vector<double>>();
    s.comm_ms.assign(c.begin() + 1, c.end());
    s.rank_peaks = r["rank_peak_bytes"].get<std::vector<std::uint64_t>>();
    if (r.contains("rank_floor_bytes")) s.rank_floors = r["rank_floor_bytes"].get<std::vector<std::uint64_t>>();
  } else {
    s.rank_peaks = {r["peak_bytes"].get<std::uint64_t>()};
  }
  return s;
}

std::string per_rank(const std::vector<std::uint64_t>& v) {
  std::string out;
  for (auto b : v) out += (out.empty() ? "" : " / ") + format_bytes(b);
  return out;
}

std::uint64_t largest(const std::vector<std::uint64_t>& v) { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }

// The ZeRO stages side by side (see the top of the file).
int bench_zero(const std::string& model, int nproc, int rounds, int steps, const std::vector<int>& stages,
               double plan_fraction, const std::string& backend, const std::string& dir) {
  std::map<std::string, Sample> by;
  std::vector<std::string> names;
  for (int z : stages) names.push_back(fmt::format("ZeRO-{}", z));
  const std::string planned = fmt::format("ZeRO-3 + optimal plan ({:g} of ZeRO-0's peak)", plan_fraction);
  std::string plan_path;
  for (int r = 0; r < rounds; ++r) {
    // Alternate the order every round so drift hits every stage alike.
    std::vector<std::size_t> order(names.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = r % 2 == 0 ? i : order.size() - 1 - i;
    for (std::size_t i : order) {
      Sample s = run(model, nproc, steps, dir + "/report.json", fmt::format(" --zero {}", stages[i]));
      Sample& into = by[names[i]];
      into.step_ms.insert(into.step_ms.end(), s.step_ms.begin(), s.step_ms.end());
      into.comm_ms.insert(into.comm_ms.end(), s.comm_ms.begin(), s.comm_ms.end());
      into.rank_peaks = s.rank_peaks;
      into.rank_floors = s.rank_floors;
      fmt::print(stderr, "  round {} {}: {:.0f} ms/step, peak {}\n", r + 1, names[i], median(s.step_ms),
                 per_rank(s.rank_peaks));
    }
    if (plan_fraction > 0) {
      if (plan_path.empty()) {
        const std::uint64_t plain = largest(by.at("ZeRO-0").rank_peaks);
        by[planned].budget = static_cast<std::uint64_t>(plan_fraction * static_cast<double>(plain));
        run_command(fmt::format("{} profile {} --nproc {} --zero 3 -q -o {}/z3-profile.json", TIDEMARK_CLI, model, nproc,
                                dir));
        plan_path = dir + "/z3-plan.json";
        run_command(fmt::format("{} plan {}/z3-profile.json --budget {}B -o {}", TIDEMARK_CLI, dir, by[planned].budget,
                                plan_path));
      }
      Sample s = run(model, nproc, steps, dir + "/report.json", " --zero 3 --plan " + plan_path);
      Sample& into = by[planned];
      into.step_ms.insert(into.step_ms.end(), s.step_ms.begin(), s.step_ms.end());
      into.comm_ms.insert(into.comm_ms.end(), s.comm_ms.begin(), s.comm_ms.end());
      into.rank_peaks = s.rank_peaks;
      into.rank_floors = s.rank_floors;
      fmt::print(stderr, "  round {} {}: {:.0f} ms/step, peak {}\n", r + 1, planned, median(s.step_ms),
                 per_rank(s.rank_peaks));
    }
  }
  if (plan_fraction > 0) names.push_back(planned);
  fmt::print("model: {} (global batch); {} ranks on {}; {} rounds of {} steps each\n\n", model, nproc, backend, rounds,
             steps);
  fmt::print("| sharding | median step ms | step × | comm wait ms (median) | floor per rank | floor × | "
             "peak per rank | peak × |\n");
  fmt::print("|---|---:|---:|---:|---:|---:|---:|---:|\n");
  const Sample& base = by.at("ZeRO-0");
  for (const auto& name : names) {
    const Sample& s = by.at(name);
    fmt::print("| {} | {:.0f} | {:.3f} | {:.1f} | {} | {:.3f} | {} | {:.3f} |\n", name, median(s.step_ms),
               median(s.step_ms) / median(base.step_ms), median(s.comm_ms), per_rank(s.rank_floors),
               static_cast<double>(largest(s.rank_floors)) / static_cast<double>(largest(base.rank_floors)),
               per_rank(s.rank_peaks),
               static_cast<double>(largest(s.rank_peaks)) / static_cast<double>(largest(base.rank_peaks)));
  }
  if (plan_fraction > 0) {
    fmt::print("\nThe plan's per-rank budget: {} ({:g} × ZeRO-0's peak per rank).\n", format_bytes(by.at(planned).budget),
               plan_fraction);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"data parallel (c10d: Gloo on the CPU, NCCL on CUDA) against one process, side by side"};
  int nproc = 2, rounds = 3, steps = 8;
  std::string model = "--layers 8 --d-model 256 --heads 8 --seq 256 --batch 8", device = "cpu";
  app.add_option("--nproc", nproc, "ranks in the data-parallel runs (1: a one-rank job)")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--device", device, "cpu (Gloo) or cuda (NCCL, one GPU per rank)")
      ->capture_default_str()->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--rounds", rounds, "alternations of 1 process and N ranks")->capture_default_str();
  app.add_option("--steps", steps, "steps per run (the first is not timed)")->capture_default_str();
  app.add_option("--model", model, "model flags; --batch is the global batch")->capture_default_str();
  std::vector<int> zero;
  double zero_plan = 0;
  app.add_option("--zero", zero, "ZeRO stages to set side by side (e.g. 0,1,2,3; 0 must be among them)")
      ->delimiter(',')->check(CLI::Range(0, 3));
  app.add_option("--zero-plan", zero_plan,
                 "with --zero: also ZeRO-3 with the optimal plan for this fraction of ZeRO-0's per-rank peak")
      ->check(CLI::Range(0.0, 1.0));
  CLI11_PARSE(app, argc, argv);
  model += " --device " + device;
  const std::string backend = device == "cuda" ? "NCCL" : "Gloo";
  const std::string dir = (std::filesystem::temp_directory_path() / "tidemark-bench-ddp").string();
  std::filesystem::create_directories(dir);
  if (!zero.empty()) {
    if (std::find(zero.begin(), zero.end(), 0) == zero.end()) {
      fmt::print(stderr, "error: --zero needs 0 among its stages: plain data parallel is what the others are set against\n");
      return 2;
    }
    if (nproc < 2) {
      fmt::print(stderr, "error: --zero shards over ranks: use --nproc 2 or more\n");
      return 2;
    }
    try {
      return bench_zero(model, nproc, rounds, steps, zero, zero_plan, backend, dir);
    } catch (const std::exception& e) {
      fmt::print(stderr, "error: {}\n", e.what());
      return 1;
    }
  }
  try {
    Sample one, many;
    for (int r = 0; r < rounds; ++r) {
      for (int k = 0; k < 2; ++k) {
        const bool first_one = (r % 2 == 0) == (k == 0);
        Sample s = run(model, first_one ? 0 : nproc, steps, dir + "/report.json");
        Sample& into = first_one ? one : many;
        into.step_ms.insert(into.step_ms.end(), s.step_ms.begin(), s.step_ms.end());
        into.comm_ms.insert(into.comm_ms.end(), s.comm_ms.begin(), s.comm_ms.end());
        into.rank_peaks = s.rank_peaks;
        fmt::print(stderr, "  round {} {}: {:.0f} ms/step\n", r + 1, first_one ? "1 process" : "data parallel",
                   median(s.step_ms));
      }
    }
    fmt::print("model: {} (global batch); {} rounds of {} steps each way\n\n", model, rounds, steps);
    fmt::print("| processes | c10d | batch per process | median step ms | step × | comm wait ms (median) | "
               "peak per process |\n");
    fmt::print("|---:|---|---:|---:|---:|---:|---:|\n");
    const double base = median(one.step_ms);
    auto peaks = [](const Sample& s) {
      std::string out;
      for (auto p : s.rank_peaks) out += (out.empty() ? "" : " / ") + format_bytes(p);
      return out;
    };
    fmt::print("| 1 | - | all | {:.0f} | 1.000 | - | {} |\n", base, peaks(one));
    fmt::print("| {} | {} | 1/{} | {:.0f} | {:.3f} | {:.1f} ({:.0f}% of the step) | {} |\n", nproc, backend, nproc,
               median(many.step_ms), median(many.step_ms) / base, median(many.comm_ms),
               100.0 * median(many.comm_ms) / median(many.step_ms), peaks(many));
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
