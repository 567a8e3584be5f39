#include "cli/cluster_cmd.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cli/cli_util.h"
#include "coordinator/local_cluster_ctl.h"
#include "node/daemon.h"

namespace fs = std::filesystem;

namespace qv {

ClusterCommands AddClusterCommands(CLI::App& app, ClusterArgs& a) {
  ClusterCommands c;
  c.cluster = app.add_subcommand("cluster", "Create, start and stop a local cluster; enroll nodes");
  c.cluster->require_subcommand(1);
  LocalClusterOptions& o = a.init;
  c.init = c.cluster->add_subcommand("init", "Generate keys and config for a local cluster");
  c.init->add_option("--dir", a.dir, "folder to create")->required();
  c.init->add_option("--sites", o.sites, "sites")->capture_default_str();
  c.init->add_option("--nodes-per-site", o.nodes_per_site, "nodes per site")->capture_default_str();
  c.init->add_option("--custodians", o.custodians, "custodians")->capture_default_str();
  c.init
      ->add_option("--spares", o.spares,
                   "spare nodes on a site of their own: empty until a repair rebuilds onto them")
      ->capture_default_str();
  c.init->add_option("--quorum", o.quorum, "custodian approvals to restore")->capture_default_str();
  c.init->add_option("--base-port", o.base_port, "first node's port")->capture_default_str();
  c.init->footer(
      "Defaults: 3 sites x 2 nodes, k=4 m=2 t=3: losing any site still restores,\n"
      "and one site's shares reveal nothing.");
  c.enroll = AddEnrollCommands(*c.cluster, a.add_node, a.enroll_request, a.enroll_run);
  c.up = c.cluster->add_subcommand("up", "Start every node in the background, wait for health");
  c.up->add_option("--dir", a.dir, "cluster folder")->required();
  c.down = c.cluster->add_subcommand("down", "Stop every node (SIGTERM, then SIGKILL)");
  c.down->add_option("--dir", a.dir, "cluster folder")->required();
  return c;
}

int CmdClusterInit(const ClusterArgs& a) {
  const std::string& dir = a.dir;
  const LocalClusterOptions& o = a.init;
  auto c = InitLocalCluster(dir, o);
  if (!c.ok()) return Fail(c.status());
  std::printf(
      "initialised cluster '%s' in %s: %zu sites, %zu nodes (k=%u, m=%u, t=%u), "
      "%zu custodians (quorum %u), 1 operator\n",
      c->name.c_str(), dir.c_str(), c->sites.size(), c->nodes.size(), c->k, c->m, c->t,
      c->custodians.size(), c->quorum);
  std::printf("  cluster file  %s/cluster.toml\n  coordinator   %s\n", dir.c_str(),
              PublicKeyToText(c->coordinator).c_str());
  for (const auto& n : c->nodes) {
    std::printf("  %-8s %-8s %s:%u\n", Shown(n.id).c_str(), Shown(n.site).c_str(),
                Shown(n.host).c_str(), n.port);
  }
  return 0;
}

int CmdClusterUp(const ClusterArgs& a) {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Fail(IoError("cannot find the qv binary: " + ec.message()));
  auto nodes = ClusterUp(a.dir, self, std::chrono::seconds(20));
  if (!nodes.ok()) return Fail(nodes.status());
  for (const auto& n : *nodes) {
    std::printf("%-8s up at %-22s pid %d\n", Shown(n.id).c_str(), Shown(n.address).c_str(), n.pid);
  }
  return 0;
}

int CmdClusterDown(const ClusterArgs& a) {
  auto stopped = ClusterDown(a.dir, std::chrono::seconds(5));
  if (!stopped.ok()) return Fail(stopped.status());
  std::printf("stopped %d node(s)\n", *stopped);
  return 0;
}

NodeCommands AddNodeCommands(CLI::App& app, std::string& config) {
  NodeCommands c;
  c.node = app.add_subcommand("node", "Run a node daemon");
  c.node->require_subcommand(1);
  c.run = c.node->add_subcommand("run", "Serve a node until SIGINT/SIGTERM");
  c.run->add_option("--config", config, "node file (node.toml)")->required();
  return c;
}

int CmdNodeRun(const std::string& config) {
  Status st = RunNodeDaemon(config);
  return st.ok() ? 0 : Fail(st);
}

}  // namespace qv
