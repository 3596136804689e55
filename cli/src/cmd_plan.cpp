// tidemark plan PROFILE --budget B [--solver S] -o plan.json [--pareto pareto.csv]
// (being written: the planner issue replaces this file)
#include "commands.hpp"

namespace tidemark::cli {

void add_plan_command(CLI::App&) {}

}  // namespace tidemark::cli
