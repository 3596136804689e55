// tidemark export TRACE --chrome out.json
#include <fmt/format.h>

#include "commands.hpp"
#include "tidemark/core/files.hpp"
#include "tidemark/core/trace.hpp"

namespace tidemark::cli {

void add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Convert a tidemark.trace/1 file for other tools");
  cmd->footer(
      "Example:\n  tidemark export trace.json --chrome chrome.json\n"
      "then open chrome.json in https://ui.perfetto.dev or chrome://tracing: one track per\n"
      "stage (forward, backward, recompute spans) and a memory counter per category.");
  auto trace_path = std::make_shared<std::string>();
  auto chrome_path = std::make_shared<std::string>();
  cmd->add_option("trace", *trace_path, "trace file written by profile --trace or train --trace")
      ->required();
  cmd->add_option("--chrome", *chrome_path, "write Chrome trace event JSON here")->required();
  cmd->callback([trace_path, chrome_path] {
    check_writable(*chrome_path, "--chrome");
    Trace t = read_trace(*trace_path);
    write_file_atomic(*chrome_path, trace_to_chrome_json(t), "--chrome");
    fmt::print("wrote {} ({} spans, {} memory samples)\n", *chrome_path, t.spans.size(),
               t.memory.size());
  });
}

}  // namespace tidemark::cli
