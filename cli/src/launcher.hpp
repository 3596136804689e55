#pragma once
// `--nproc N`: runs this program's own command line as ranks 0..N-1 of a data-parallel job
// on this machine, with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT), so a rank cannot tell our launcher from torchrun.
#include <string>
#include <vector>

#include "run_app.hpp"  // ExitCode

namespace tidemark::cli {

// The program's arguments as main received them (the launcher re-runs them).
void set_program_args(int argc, char** argv);

// Starts N ranks with this program's arguments minus --nproc, waits for them, and returns
// the job's exit code: 0 when every rank succeeded. When a rank fails, the others are
// stopped (SIGTERM, then SIGKILL after a grace period); the code is 2 when the first rank to
// fail reported a user error (it printed the error line), 1 otherwise, with one error line
// naming the rank.
int launch_local_ranks(int nproc);

// "[rank R] " in a data-parallel rank other than 0 (their messages do not start with
// "error:", so a job prints one error line), "" otherwise.
std::string rank_prefix();

}  // namespace tidemark::cli
