// Data parallel against one process, side by side in one run: the same global batch trained
// by 1 process and by N ranks (tidemark train --nproc N; Gloo on the CPU, NCCL on CUDA),
// alternating rounds so drift evens out. Per configuration: median step time, each rank's
// peak, and the milliseconds rank 0 waited for gradient all-reduces after its backward
// (communication backward did not hide). --nproc 1 runs a one-rank job under torchrun's
// environment: on a machine with one GPU, what the NCCL path costs with nothing to average.
//
//   build/bench/ddp/bench_ddp [--nproc 2] [--rounds 3] [--steps 8] [--model "--layers 8 ..."]
//   build/bench/ddp/bench_ddp --device cuda --nproc 1 --model "--layers 12 --d-model 1024 ..."
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
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
  std::vector<std::uint64_t> rank_peaks;
};

// nproc 0: one plain process; 1: a one-rank job under torchrun's environment; N: --nproc N.
Sample run(const std::string& model, int nproc, int steps, const std::string& report) {
  std::string env, launch;
  if (nproc == 1) {
    std::mt19937 rng(std::random_device{}());
    env = fmt::format("WORLD_SIZE=1 RANK=0 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT={} ",
                      20000 + static_cast<int>(rng() % 20000));
  } else if (nproc > 1) {
    launch = fmt::format(" --nproc {}", nproc);
  }
  const std::string cmd =
      fmt::format("{}{} train {} --steps {}{} -q --report {} 2>&1", env, TIDEMARK_CLI, model, steps, launch, report);
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p && (n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (!p || ::pclose(p) != 0) throw std::runtime_error(fmt::format("'{}' failed:\n{}", cmd, out));
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
  } else {
    s.rank_peaks = {r["peak_bytes"].get<std::uint64_t>()};
  }
  return s;
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
  CLI11_PARSE(app, argc, argv);
  model += " --device " + device;
  const std::string backend = device == "cuda" ? "NCCL" : "Gloo";
  const std::string dir = (std::filesystem::temp_directory_path() / "tidemark-bench-ddp").string();
  std::filesystem::create_directories(dir);
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
