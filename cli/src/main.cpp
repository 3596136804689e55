// tidemark: find the memory high-water mark of a LibTorch training step and lower it.
#include <cstdio>
#include <exception>
#include <string>
#include <fmt/format.h>

#include "cli_config.hpp"
#include "commands.hpp"
#include "launcher.hpp"
#if TIDEMARK_HAVE_TORCH
#include "tidemark/runtime/trainer.hpp"
#endif
#include "tidemark/core/error.hpp"

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

}  // namespace

int main(int argc, char** argv) {
#if TIDEMARK_HAVE_TORCH
  tidemark::runtime::tune_cpu_allocator();  // Note [CPU allocator]
  tidemark::runtime::use_all_cores();
#endif
  tidemark::cli::set_program_args(argc, argv);
  const std::string rank = tidemark::cli::rank_prefix();
  CLI::App app{kDescription, "tidemark"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tidemark " TIDEMARK_VERSION);
  tidemark::cli::add_plan_command(app);
  tidemark::cli::add_export_command(app);
  tidemark::cli::add_compare_command(app);
#if TIDEMARK_HAVE_TORCH
  tidemark::cli::add_profile_command(app);
  tidemark::cli::add_train_command(app);
#endif
#if TIDEMARK_HAVE_VIEWER
  tidemark::cli::add_view_command(app);
#endif
#if !TIDEMARK_HAVE_VIEWER
  if (argc > 1 && std::string(argv[1]) == "view") {
    std::fprintf(stderr,
                 "error: this tidemark was built without the viewer (it needs libimgui-dev, "
                 "libglfw3-dev and libgl-dev; run scripts/install-deps, then rebuild)\n");
    return 2;
  }
#endif
#if !TIDEMARK_HAVE_TORCH
  if (argc > 1 && (std::string(argv[1]) == "train" || std::string(argv[1]) == "profile")) {
    std::fprintf(stderr, "error: this tidemark was built without LibTorch, so it cannot %s "
                         "(install libtorch-dev and rebuild with -DTIDEMARK_WITH_TORCH=ON)\n", argv[1]);
    return 2;
  }
#endif
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
    std::fprintf(stderr, "error: %s\n(run 'tidemark --help' or 'tidemark <command> --help')\n",
                 what.c_str());
    return 2;
  } catch (const tidemark::cli::ExitCode& e) {
    return e.code;
  } catch (const tidemark::UserError& e) {
    std::fprintf(stderr, "%serror: %s\n", rank.c_str(), e.what());
    return 2;
  } catch (const tidemark::RunFailure& e) {
    std::fprintf(stderr, "%serror: %s\n", rank.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n(this is a bug in tidemark; please report it)\n", e.what());
    return 1;
  }
  return 0;
}
