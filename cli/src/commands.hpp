#pragma once
// Each subcommand lives in its own file and registers itself on the app. A command's
// callback throws tidemark::UserError for anything the user can fix; main() turns that
// into one "error: ..." line and exit code 2.
#include <CLI/CLI.hpp>

namespace tidemark::cli {

void add_plan_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_compare_command(CLI::App& app);
#if TIDEMARK_HAVE_TORCH
void add_train_command(CLI::App& app);
void add_profile_command(CLI::App& app);
#endif

}  // namespace tidemark::cli
