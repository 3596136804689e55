#include <fmt/format.h>
#include "tidemark/core/profile.hpp"
#include "tidemark/core/report.hpp"
#include "tidemark/planner/simulator.hpp"
#include "tidemark/runtime/trainer.hpp"
#include "tidemark/runtime/executor.hpp"
using namespace tidemark;
#include <malloc.h>
int main(int argc, char** argv) {
  runtime::tune_cpu_allocator();
  ChainProfile prof = read_profile(argv[1]);
  auto chain = planner::chain_from_profile(prof);
  int n = chain.size();
  std::vector<std::pair<std::string, PlanNode>> plans;
  plans.push_back({"none", PlanNode::sequence(0, n, {PlanNode::save(0, n)})});
  { std::vector<PlanNode> p; for (int k=0;k<n;++k) p.push_back((k>0&&k<n-1)?PlanNode::checkpoint(k,k+1,{PlanNode::save(k,k+1)}):PlanNode::save(k,k+1)); plans.push_back({"uniform", PlanNode::sequence(0,n,p)}); }
  { std::vector<PlanNode> p; p.push_back(PlanNode::save(0,1)); for (int k=1;k<n-1;k+=2) p.push_back(PlanNode::checkpoint(k,std::min(k+2,n-1),{PlanNode::save(k,std::min(k+2,n-1))})); p.push_back(PlanNode::save(n-1,n)); plans.push_back({"every2", PlanNode::sequence(0,n,p)}); }
  { std::vector<PlanNode> p; p.push_back(PlanNode::save(0,1)); p.push_back(PlanNode::checkpoint(1,n-1,{PlanNode::checkpoint(1,n/2,{PlanNode::save(1,n/2)}), PlanNode::save(n/2,n-1)})); p.push_back(PlanNode::save(n-1,n)); plans.push_back({"nested", PlanNode::sequence(0,n,p)}); }
  { std::vector<PlanNode> p; p.push_back(PlanNode::save(0,3)); p.push_back(PlanNode::checkpoint(3,n-1,{PlanNode::save(3,n-1)})); p.push_back(PlanNode::save(n-1,n)); plans.push_back({"half", PlanNode::sequence(0,n,p)}); }
  for (auto& [name, root] : plans) {
    auto sim = planner::simulate(chain, root);
    runtime::TrainingConfig cfg; cfg.model = prof.config; cfg.steps = 6; cfg.plan = root;
    runtime::Trainer tr(cfg);
    auto st = tr.train();
    std::int64_t peak = 0; std::vector<double> ms;
    for (auto& s : st) { peak = std::max(peak, s.peak_bytes); if (s.step > 0) ms.push_back(s.ms); }
    for (auto& s : st) fmt::print("{:.0f} ", s.ms); fmt::print("\n");
    fmt::print("{:8} predicted {:>12} measured {:>12} diff {:+.2f}%  time pred {:.0f} meas {:.0f}\n", name, sim.peak_bytes, peak,
      100.0*(double(peak)-double(sim.peak_bytes))/double(peak), sim.step_ms, median(ms));
  }
}
