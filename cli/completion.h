// Shell completion (bash, zsh) and the man page, generated from the very
// CLI11 tree that parses the command line, so they cannot drift from it
// (issue 17). `qv completion bash|zsh` prints a script; `qv man` prints
// roff (man(7)); the build runs both and installs what they print.
// Pure functions of the tree.
#ifndef QV_CLI_COMPLETION_H_
#define QV_CLI_COMPLETION_H_

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

namespace qv {

std::string BashCompletion(const CLI::App& app);
// zsh runs the bash function through bashcompinit.
std::string ZshCompletion(const CLI::App& app);
std::string ManPage(const CLI::App& app, std::string_view version);

}  // namespace qv

#endif  // QV_CLI_COMPLETION_H_
