#pragma once
// Running the tidemark binary from tests.
#include <string>

namespace tidemark::testing {

struct Run {
  int rc = -1;
  std::string output;  // stdout and stderr together
};

// Runs `tidemark <args>` (args are passed to the shell as written).
Run run_tidemark(const std::string& args);
// Runs `tidemark <args>` with TIDEMARK_FAULT=<fault> (core/include/tidemark/core/fault.hpp).
Run run_tidemark_with_fault(const std::string& fault, const std::string& args);
// Runs a shell command line; rc is 128 + signal when a signal ended it.
Run run_command(const std::string& command);
std::string tidemark_path();
// A port for a job's store started by hand (the launcher finds a free one itself). It lies
// below Linux's ephemeral range (32768 up), so no connection's source port can hold it.
int random_port();
// A fresh empty directory under the build tree for one test.
std::string scratch_dir(const std::string& name);
bool file_exists(const std::string& path);
std::string slurp(const std::string& path);
void spit(const std::string& path, const std::string& text);
// Number of lines starting with "error:".
int error_lines(const std::string& output);

}  // namespace tidemark::testing
