// Where `qv` finds what the user did not type (issue 17), as restic and
// Vault users expect: the cluster file is --cluster, else $QV_CLUSTER, else
// ./cluster.toml, else $XDG_CONFIG_HOME/quorumvault/cluster.toml
// (~/.config when unset); a folder (what `qv cluster init` made) stands
// for the cluster.toml in it. A principal's key is --key, else $QV_KEY.
// And what the user mistyped: a command that does not exist is named with
// the nearest one.
//
// Not thread-safe: called from main before and after parsing.
#ifndef QV_CLI_DISCOVERY_H_
#define QV_CLI_DISCOVERY_H_

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace qv {

// Every --cluster and --key option under `app`: not required on the
// command line (their commands say what is missing), read from the
// environment, and --cluster defaulting to the first cluster file found.
// Call before parsing.
void ApplyDiscovery(CLI::App& app);

// The cluster file found without --cluster: QV_CLUSTER (a folder stands
// for its cluster.toml), else ./cluster.toml, else the XDG one; "" if none.
std::string DefaultClusterFile();

// Where the cluster file of this run came from: "--cluster" when `typed`,
// "QV_CLUSTER", "./cluster.toml" or the XDG path, or "" when none was found.
std::string ClusterSource(bool typed);
// Whether `flag` (or flag=VALUE) is among the command-line words `args`.
bool TypedOnCommandLine(const std::vector<std::string>& args, const std::string& flag);

// "unknown command 'lsit'; did you mean 'list'?" for the first word of
// `args` that names no subcommand where one is required, "'qv cluster'
// needs a command: ..." when the words end where one is required, or
// nullopt (an option word ends the walk: --help still helps).
std::optional<std::string> UnknownCommand(const CLI::App& app,
                                          const std::vector<std::string>& args);

}  // namespace qv

#endif  // QV_CLI_DISCOVERY_H_
