// tidemark: find the memory high-water mark of a LibTorch training step and lower it.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#include "cli_config.hpp"
#include "commands.hpp"
#include "launcher.hpp"
#include "run_app.hpp"
#if TIDEMARK_HAVE_TORCH
#include "tidemark/runtime/trainer.hpp"
#endif

namespace {

constexpr const char* kDescription = R"(tidemark profiles the memory of a LibTorch training step and lowers its
high-water mark with the fastest checkpoint (recompute) plan for a memory budget.

  tidemark profile -o profile.json               measure per-stage memory and time
  tidemark plan profile.json --budget 0.5 -o plan.json
                                                 fastest plan whose peak fits the budget
  tidemark train --plan plan.json --report r.json
                                                 train with it; peak stays under budget
  tidemark view trace.json                       look at the memory timeline

Run 'tidemark <command> --help' for the flags of each command.)";

// Note [tidemark-view]: `tidemark view` runs the viewer as its own program, tidemark-view,
// installed beside this one. The viewer is torch-free by design, and keeping it out of this
// process matters: Debian's libtorch_cpu 2.6 carries LLVM and exports its C API, so Mesa's
// llvmpipe, loaded into the same process for the viewer's OpenGL context, binds to torch's
// LLVM and crashes. exec replaces this process image (LibTorch included) with the viewer's,
// which also spares loading a gigabyte of LibTorch to look at a trace.
[[noreturn]] void hand_over_to_viewer(int argc, char** argv) {
  std::string dir;
  std::vector<char> self(4096);
  const ssize_t n = ::readlink("/proc/self/exe", self.data(), self.size() - 1);
  if (n > 0) {
    dir.assign(self.data(), static_cast<std::size_t>(n));
    dir.erase(dir.find_last_of('/') + 1);
  }
  const std::string viewer = dir + "tidemark-view";
  std::vector<char*> args{const_cast<char*>(viewer.c_str())};
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  ::execv(viewer.c_str(), args.data());
  const int err = errno;
  if (err == ENOENT) {
    std::fprintf(stderr,
                 "error: tidemark view runs %s, which was not built (it needs libimgui-dev, libglfw3-dev, "
                 "libgl-dev and pkgconf: run scripts/install-deps, then rebuild)\n",
                 viewer.c_str());
  } else {
    std::fprintf(stderr, "error: tidemark view could not start %s: %s\n", viewer.c_str(), std::strerror(err));
  }
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "view") hand_over_to_viewer(argc, argv);  // Note [tidemark-view]
#if TIDEMARK_HAVE_TORCH
  tidemark::runtime::tune_cpu_allocator();  // Note [CPU allocator]
  tidemark::runtime::use_all_cores();
#endif
  tidemark::cli::set_program_args(argc, argv);
  CLI::App app{kDescription, "tidemark"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tidemark " TIDEMARK_VERSION);
  tidemark::cli::add_plan_command(app);
  tidemark::cli::add_export_command(app);
  tidemark::cli::add_compare_command(app);
#if TIDEMARK_HAVE_TORCH
  tidemark::cli::add_profile_command(app);
  tidemark::cli::add_train_command(app);
#else
  if (argc > 1 && (std::string(argv[1]) == "train" || std::string(argv[1]) == "profile")) {
    std::fprintf(stderr, "error: this tidemark was built without LibTorch, so it cannot %s "
                         "(install libtorch-dev and rebuild with -DTIDEMARK_WITH_TORCH=ON)\n", argv[1]);
    return 2;
  }
#endif
  // Listed here for --help only: main() hands `view` to tidemark-view before parsing.
  app.add_subcommand("view", "Show a trace's memory timeline, stage lanes and per-stage table (tidemark-view)");
  return tidemark::cli::run_app(app, argc, argv, tidemark::cli::rank_prefix());
}
