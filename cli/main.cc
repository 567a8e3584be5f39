// qv: the quorumvault command line. Thin by design: it parses arguments,
// calls the coordinator, and prints. Exit codes: 0 success, 1 the operation
// failed (one line on stderr names why), 2 bad usage.
#include <malloc.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "cli/approve_cmd.h"
#include "cli/audit_cmd.h"
#include "cli/backup_cmd.h"
#include "cli/bench_cmd.h"
#include "cli/catalog_cmd.h"
#include "cli/ceremony_cmd.h"
#include "cli/cli_util.h"
#include "cli/cluster_cmd.h"
#include "cli/completion.h"
#include "cli/discovery.h"
#include "cli/drill_cmd.h"
#include "cli/enroll_cmd.h"
#include "cli/health_cmd.h"
#include "cli/repair_cmd.h"
#include "cli/restore_cmd.h"
#include "cli/token_cmd.h"

namespace qv {
namespace {

int Main(int argc, char** argv) {
  const std::vector<std::string> words(argv + 1, argv + argc);
  CLI::App app{
      "quorumvault: model weights kept recoverable across sites, restorable only by a quorum.\n"
      "Backups are encrypted under a fresh key, erasure-coded into k data + m parity fragments,\n"
      "and the key is split t-of-n with verifiable shares; every byte is checked on restore."};
  app.set_version_flag("--version", kVersion);
  app.require_subcommand(1);
  app.footer(std::string(kConcepts) +
             "\nThe cluster file is --cluster, else QV_CLUSTER, else ./cluster.toml, else\n"
             "$XDG_CONFIG_HOME/quorumvault/cluster.toml; keys are --key, else QV_KEY.\n"
             "Exit codes: 0 done, 1 failed (one line on stderr says why), 2 bad usage.");

  KeygenArgs keygen_args;
  CLI::App* keygen = AddKeygenCommand(app, keygen_args);

  BackupArgs b;
  CLI::App* backup = AddBackupCommand(app, b, words);

  RestoreArgs r;
  RequestArgs rq;
  RunArgs rr;
  const RestoreCommands restore = AddRestoreCommands(app, r, rq, rr);

  ApproveArgs ap;
  CLI::App* approve = AddApproveCommand(app, ap);

  AuditArgs audit_args;
  const AuditCommands audit_cmds = AddAuditCommands(app, audit_args);
  CatalogArgs catalog;
  const CatalogCommands catalog_cmds = AddCatalogCommands(app, catalog);
  ScrubArgs sc;
  CLI::App* scrub = AddScrubCommand(app, sc);
  StatusArgs st;
  CLI::App* status = AddStatusCommand(app, st);

  ClusterArgs cl;
  const ClusterCommands cluster = AddClusterCommands(app, cl);
  PendingArgs pending_args;
  CLI::App* pending = AddPendingCommand(app, pending_args);
  std::string node_config;
  const NodeCommands node = AddNodeCommands(app, node_config);
  WrapMasterArgs wrap_args;
  CLI::App* wrap_master = AddWrapMasterCommand(*node.node, wrap_args);

  BenchArgs bench_args;
  CLI::App* bench = AddBenchCommand(app, bench_args);
  SampleArgs sample_args;
  CLI::App* sample = AddSampleCommand(app, sample_args);

  DrillArgs drill_args;
  DrillBenchArgs drill_bench_args;
  auto [drill_run, drill_bench] = AddDrillCommand(app, drill_args, drill_bench_args);
  RepairRequestArgs repair_request_args;
  RepairRunArgs repair_run_args;
  RepairBenchArgs repair_bench_args;
  const RepairCommands repair =
      AddRepairCommand(app, repair_request_args, repair_run_args, repair_bench_args);

  std::string completion_shell;
  auto* completion =
      app.add_subcommand("completion", "Print a shell completion script (bash or zsh)");
  completion->add_option("shell", completion_shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  completion->footer(
      "bash:  source <(qv completion bash)   (or save it as /etc/bash_completion.d/qv)\n"
      "zsh:   qv completion zsh > \"${fpath[1]}/_qv\"   (then start a new shell)\n"
      "The build also writes both (share/bash-completion, share/zsh) and installs them.");
  auto* man = app.add_subcommand("man", "Print the manual page (roff); the build installs it");
  man->footer("Read it here with  man -l <(qv man)");
  ApplyDiscovery(app);
  const bool json = TypedOnCommandLine(words, "--json");
  SetJsonErrors(json);
  if (auto unknown = UnknownCommand(app, words)) {
    std::fprintf(stderr, "qv: error: %s\n", Printable(*unknown).c_str());
    if (json) PrintJsonError("usage", *unknown);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "qv: error: %s\nRun with --help for more information.\n",
                 Printable(e.what()).c_str());
    if (json) PrintJsonError("usage", e.what());
    return 2;
  }
  // --local names the whole destination: a cluster file found on the way
  // (QV_CLUSTER, ./cluster.toml) does not make it ambiguous.
  const bool cluster_typed = TypedOnCommandLine(words, "--cluster");
  if (!cluster_typed) {
    for (auto [local, cluster] :
         {std::pair{&b.local, &b.cluster}, std::pair{&r.local, &r.cluster},
          std::pair{&catalog.list.src.local, &catalog.list.src.cluster},
          std::pair{&catalog.show.src.local, &catalog.show.src.cluster},
          std::pair{&catalog.diff.src.local, &catalog.diff.src.cluster},
          std::pair{&catalog.verify.src.local, &catalog.verify.src.cluster}}) {
      if (!local->empty()) cluster->clear();
    }
    // Drills damage the cluster they run on: only one named on purpose.
    drill_args.cluster.clear();
  }
  if (*completion) {
    std::fputs((completion_shell == "zsh" ? ZshCompletion(app) : BashCompletion(app)).c_str(),
               stdout);
    return 0;
  }
  if (*man) {
    std::fputs(ManPage(app, kVersion).c_str(), stdout);
    return 0;
  }
  if (*keygen) return CmdKeygen(keygen_args);
  if (*backup) {
    b.kmt_given = backup->count("--k") + backup->count("--m") + backup->count("--t") > 0;
    b.name_given = backup->count("--name") > 0;
    return CmdBackup(b);
  }
  if (*restore.request) return CmdRestoreRequest(rq);
  if (*restore.run) return CmdRestoreRun(rr);
  if (*restore.restore) return CmdRestore(r);
  if (*approve) return CmdApprove(ap);
  if (*audit_cmds.verify) return CmdAuditVerify(audit_args);
  if (*audit_cmds.log) return CmdAuditLog(audit_args);
  if (*catalog_cmds.list) return CmdList(catalog.list);
  if (*catalog_cmds.diff) return CmdDiff(catalog.diff);
  if (*catalog_cmds.verify) return CmdVerify(catalog.verify);
  if (*scrub) return CmdScrub(sc);
  if (*catalog_cmds.show) return CmdShow(catalog.show);
  if (*status) return CmdStatus(st, ClusterSource(cluster_typed));
  if (*pending) return CmdPending(pending_args);
  if (*cluster.init) return CmdClusterInit(cl);
  if (*cluster.enroll.add_node) return CmdAddNode(cl.add_node);
  if (*cluster.enroll.request) return CmdEnrollRequest(cl.enroll_request);
  if (*cluster.enroll.run) return CmdEnrollRun(cl.enroll_run);
  if (*cluster.up) return CmdClusterUp(cl);
  if (*cluster.down) return CmdClusterDown(cl);
  if (*wrap_master) return CmdWrapMaster(wrap_args);
  if (*node.run) return CmdNodeRun(node_config);
  if (*bench) return CmdBench(bench_args);
  if (*sample) return CmdSample(sample_args);
  if (*drill_run) return CmdDrillRun(drill_args);
  if (*repair.request) return CmdRepairRequest(repair_request_args);
  if (*repair.run) return CmdRepairRun(repair_run_args);
  if (*repair.bench) return CmdRepairBench(repair_bench_args);
  if (*drill_bench) return CmdDrillBench(drill_bench_args);
  return 2;
}

}  // namespace
}  // namespace qv

int main(int argc, char** argv) {
  // Message and stripe buffers are 0.25-4 MiB and are allocated and freed at
  // a high rate. glibc would mmap/munmap each one (its default threshold is
  // 128 KiB), paying page faults on every use; from the heap they are reused.
  // Peak memory stays what the pipelines bound it to.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
  // A restore keeps each verified file open, unnamed, until all are
  // (coordinator/artifact.h): allow as many descriptors as the system does.
  if (rlimit r{}; ::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
  try {
    return qv::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qv: error: %s\n", e.what());
    return 1;
  }
}
