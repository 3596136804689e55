#pragma once
// One place that turns a command line's outcome into output and an exit code, for both
// executables (tidemark and tidemark-view): help and version go to stdout with 0; a bad
// flag or a UserError is one "error:" line and 2; a RunFailure one "error:" line and 1;
// anything else escaping is a bug, said as such, and 1.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <string>

#include "tidemark/core/error.hpp"

namespace tidemark::cli {

// Thrown by a command that has finished the job itself with this exit code (main returns it).
struct ExitCode {
  int code = 0;
};

// Data-parallel ranks share one stderr pipe. A line written by one write(2) is atomic on a
// pipe (up to PIPE_BUF bytes), so two ranks' errors never splice into each other; stdio may
// write a line in pieces, and under LibTorch 2.6 it did, leaving no line that began with
// "error:".
inline void print_error_line(const std::string& prefix, const char* what) {
  const std::string line = prefix + "error: " + what + "\n";
  std::fflush(stderr);
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

// prefix: what goes before "error:" ("[rank R] " on a data-parallel rank other than 0).
inline int run_app(CLI::App& app, int argc, char** argv, const std::string& prefix = "") {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    if (what.empty()) what = e.get_name();
    const std::string name = app.get_name();
    if (app.get_subcommands({}).empty()) {
      std::fprintf(stderr, "error: %s\n(run '%s --help')\n", what.c_str(), name.c_str());
    } else {
      std::fprintf(stderr, "error: %s\n(run '%s --help' or '%s <command> --help')\n", what.c_str(), name.c_str(),
                   name.c_str());
    }
    return 2;
  } catch (const ExitCode& e) {
    return e.code;
  } catch (const UserError& e) {
    print_error_line(prefix, e.what());
    return 2;
  } catch (const RunFailure& e) {
    print_error_line(prefix, e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n(this is a bug in tidemark; please report it)\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace tidemark::cli
