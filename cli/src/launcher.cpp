#include "launcher.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "tidemark/core/error.hpp"

namespace tidemark::cli {
namespace {

std::vector<std::string>& program_args() {
  static std::vector<std::string> args;
  return args;
}

// A port that was free a moment ago, for rank 0's store (as torchrun's standalone mode).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw RunFailure(fmt::format("cannot open a socket: {}", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw RunFailure(fmt::format("cannot find a free port on 127.0.0.1: {}", std::strerror(errno)));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The arguments without --nproc and its value.
std::vector<std::string> rank_args() {
  std::vector<std::string> out;
  const auto& in = program_args();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == "--nproc") {
      ++i;
      continue;
    }
    if (in[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(in[i]);
  }
  return out;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return "stopped";
}

}  // namespace

void set_program_args(int argc, char** argv) {
  program_args().assign(argv, argv + argc);
}

std::string rank_prefix() {
  const char* r = std::getenv("RANK");
  if (!r || std::string(r) == "0" || !std::getenv("WORLD_SIZE")) return "";
  return fmt::format("[rank {}] ", r);
}

int launch_local_ranks(int nproc) {
  if (std::getenv("WORLD_SIZE")) {
    throw UserError("--nproc starts its own ranks; do not combine it with torchrun's WORLD_SIZE/RANK environment");
  }
  const std::vector<std::string> args = rank_args();
  const std::string port = std::to_string(free_port());
  std::vector<pid_t> pids;
  for (int r = 0; r < nproc; ++r) {
    pid_t pid = ::fork();
    if (pid < 0) throw RunFailure(fmt::format("cannot start rank {}: {}", r, std::strerror(errno)));
    if (pid == 0) {
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", port.c_str(), 1);
      // The ranks share this machine's cores instead of each taking all of them.
      if (!std::getenv("OMP_NUM_THREADS")) {
        const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
        ::setenv("OMP_NUM_THREADS", std::to_string(std::max(1u, cores / static_cast<unsigned>(nproc))).c_str(), 1);
      }
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "error: rank %d could not start %s: %s\n", r, args[0].c_str(), std::strerror(errno));
      std::_Exit(127);
    }
    pids.push_back(pid);
  }

  // Wait; the first failure stops the job, so no rank is left waiting on a dead peer.
  std::size_t running = pids.size();
  std::vector<bool> done(pids.size(), false);
  std::vector<int> statuses(pids.size(), 0);
  // The rank whose process ended (recorded in done/statuses), or -1 when none did.
  auto reap = [&](bool block) {
    int status = 0;
    pid_t pid;
    do {
      pid = ::waitpid(-1, &status, block ? 0 : WNOHANG);
    } while (pid < 0 && errno == EINTR);
    for (std::size_t r = 0; r < pids.size(); ++r) {
      if (pids[r] != pid || done[r]) continue;
      done[r] = true;
      statuses[r] = status;
      --running;
      return static_cast<int>(r);
    }
    return -1;
  };
  auto wait_for = [&](std::chrono::seconds grace) {
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (running > 0 && std::chrono::steady_clock::now() < deadline) {
      if (reap(false) < 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  // The others usually fail on their own at once (a refused start, a broken connection):
  // let them say why, then stop whoever is still waiting on the dead rank.
  auto stop_others = [&] {
    wait_for(std::chrono::seconds(5));
    for (std::size_t r = 0; r < pids.size(); ++r) {
      if (!done[r]) ::kill(pids[r], SIGTERM);
    }
    wait_for(std::chrono::seconds(5));
    for (std::size_t r = 0; r < pids.size(); ++r) {
      if (!done[r]) ::kill(pids[r], SIGKILL);
    }
    while (running > 0 && reap(true) >= 0) {
    }
  };
  int failed_rank = -1;
  while (running > 0 && failed_rank < 0) {
    const int r = reap(true);
    if (r < 0) break;
    if (!(WIFEXITED(statuses[r]) && WEXITSTATUS(statuses[r]) == 0)) {
      failed_rank = r;
      stop_others();
    }
  }
  if (failed_rank < 0) return 0;
  const int failed_status = statuses[static_cast<std::size_t>(failed_rank)];
  auto user_error = [](int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 2; };
  if (user_error(statuses[0])) return 2;  // rank 0 printed the one error line
  if (user_error(failed_status)) {
    std::fprintf(stderr, "error: rank %d of %d refused to run (its message is above, marked [rank %d])\n",
                 failed_rank, nproc, failed_rank);
    return 2;
  }
  std::fprintf(stderr, "error: rank %d of %d %s; the other ranks were stopped\n", failed_rank, nproc,
               describe_status(failed_status).c_str());
  return 1;
}

}  // namespace tidemark::cli
