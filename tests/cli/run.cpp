#include "run.hpp"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <sys/wait.h>

namespace tidemark::testing {

std::string tidemark_path() { return std::string(TIDEMARK_BINARY_DIR) + "/cli/tidemark"; }

int random_port() {
  std::mt19937 rng(std::random_device{}());
  return 20000 + static_cast<int>(rng() % 12000);
}

Run run_tidemark(const std::string& args) { return run_command(tidemark_path() + " " + args); }

Run run_tidemark_with_fault(const std::string& fault, const std::string& args) {
  ::setenv("TIDEMARK_FAULT", fault.c_str(), 1);
  Run r = run_tidemark(args);
  ::unsetenv("TIDEMARK_FAULT");
  return r;
}

Run run_command(const std::string& command) {
  Run r;
  std::string cmd = command + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string scratch_dir(const std::string& name) {
  const auto root = std::filesystem::path(TIDEMARK_BINARY_DIR) / "test-scratch";
  const auto dir = root / name;
  // ctest runs test cases as processes side by side, so two cases that share a name would
  // delete each other's files at random (CI once failed that way). Each process holds a lock
  // on every name it uses until it exits; a second process asking for the name fails at once.
  static std::set<std::string> held;
  if (!held.count(name)) {
    std::filesystem::create_directories(root);
    const std::string lock = (root / (name + ".lock")).string();
    const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot create " + lock + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      throw std::runtime_error("scratch directory '" + name +
                               "' is in use by another test process: give each test case a name of its own");
    }
    held.insert(name);  // the descriptor stays open: the lock lasts as long as this process
  }
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

bool file_exists(const std::string& path) { return std::filesystem::exists(path); }

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

int error_lines(const std::string& output) {
  int n = 0;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) n += line.rfind("error:", 0) == 0;
  return n;
}

}  // namespace tidemark::testing
