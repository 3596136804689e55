#include <CLI/CLI.hpp>
#include <fmt/format.h>

int main(int argc, char** argv) {
  CLI::App app{"tidemark"};
  CLI11_PARSE(app, argc, argv);
  return 0;
}
