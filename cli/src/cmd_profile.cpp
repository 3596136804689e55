#include "commands.hpp"
namespace tidemark::cli {
void add_profile_command(CLI::App&) {}
}  // namespace tidemark::cli
