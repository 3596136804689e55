#pragma once
// One status line on stderr for long work: redrawn in place on a terminal, printed every
// few steps when stderr is a file or pipe (CI logs stay short and readable).
#include <cstdio>
#include <string>
#include <unistd.h>

namespace tidemark::cli {

class Progress {
 public:
  Progress(std::string label, int total, bool quiet = false)
      : label_(std::move(label)), total_(total), quiet_(quiet), tty_(::isatty(2) != 0) {}

  void update(int done, const std::string& status) {
    if (quiet_) return;
    if (tty_) {
      const int width = 20;
      int fill = total_ > 0 ? done * width / total_ : width;
      std::string bar(fill, '#');
      bar.resize(width, '.');
      std::fprintf(stderr, "\r%s [%s] %d/%d %s\033[K", label_.c_str(), bar.c_str(), done, total_,
                   status.c_str());
      if (done >= total_) std::fprintf(stderr, "\n");
    } else {
      int every = total_ > 20 ? total_ / 10 : 1;
      if (done == 1 || done == total_ || done % every == 0) {
        std::fprintf(stderr, "%s %d/%d %s\n", label_.c_str(), done, total_, status.c_str());
      }
    }
    std::fflush(stderr);
  }

 private:
  std::string label_;
  int total_;
  bool quiet_;
  bool tty_;
};

}  // namespace tidemark::cli
