#include "cli/repair_cmd.h"

#include <sodium.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>

#include "base/file_util.h"
#include "base/json.h"
#include "cli/catalog_cmd.h"
#include "cli/cli_util.h"
#include "coordinator/repair.h"
#include "coordinator/scrub.h"
#include "crypto/secretbox.h"
#include "quorum/armor.h"
#include "quorum/request.h"
#include "sim/repair_bench.h"

namespace qv {

namespace fs = std::filesystem;

RepairCommands AddRepairCommand(CLI::App& app, RepairRequestArgs& rq, RepairRunArgs& rr,
                                RepairBenchArgs& rb) {
  auto* repair = app.add_subcommand(
      "repair", "Rebuild lost or corrupt fragments and key shares, under a quorum of custodians");
  repair->footer(
      "Fragments are rebuilt from k good ones as ciphertext only; each lost key share by share\n"
      "recovery among t holders over node-to-node channels. Neither the data key nor plaintext\n"
      "exists on any machine at any point. The placement change is a new manifest revision\n"
      "that names the previous one by hash (qv show lists them).");
  repair->require_subcommand(1);
  auto* req = repair->add_subcommand(
      "request", "Ask for a repair: a signed request whose plan custodians approve");
  req->add_option("--cluster", rq.cluster, "cluster file")->required();
  req->add_option("--key", rq.key, "requester key (default: operator.key beside the cluster file)");
  req->add_option("--backup", rq.backup, "backup id (32 hex characters)")->required();
  req->add_option("--plan", rq.plan,
                  "what to rebuild where, e.g. 'fragment 0 to node-06; fragment 1 to node-07' "
                  "(default: from a scrub, with the coordinator key)");
  req->add_option("--decommission", rq.decommission,
                  "plan: move NODE's fragment and share to a spare, then wipe it on NODE")
      ->excludes("--plan");
  req->add_option("--coordinator-key", rq.coordinator_key,
                  "key the default plan's scrub runs as (default: coordinator.key beside the "
                  "cluster file)");
  req->add_option("--purpose", rq.purpose, "why, in words custodians will read")->required();
  req->add_option("--ttl", rq.ttl, "how long custodians and the repair have (e.g. 30m, 4h, 1d)")
      ->capture_default_str();
  req->add_flag("--armor", rq.armor, "write it as ASCII armor (to paste into a ticket)");
  req->add_option("--out", rq.out, "request file to write (and OUT.manifest for custodians)")
      ->required();
  req->add_flag("--json", rq.json, "machine-readable output");
  req->footer(
      "Without --plan, each fragment a scrub finds bad goes back to its node if that node\n"
      "answered, else to a spare node (listed in the cluster file after the first k + m),\n"
      "preferring a site that holds none of the backup. Custodians approve with qv approve,\n"
      "as for a restore. Example:\n"
      "  qv repair request --cluster cl/cluster.toml --backup ID --purpose 'site-a lost' --out r");
  auto* run = repair->add_subcommand(
      "run", "Present a repair request and its approvals to the nodes and repair");
  run->add_option("--cluster", rr.cluster, "cluster file")->required();
  run->add_option("--key", rr.key,
                  "coordinator key: signs the new manifest revision (default: beside the cluster "
                  "file)");
  run->add_option("--request", rr.request, "request file from qv repair request")->required();
  run->add_option("--approval", rr.approvals, "approval files from qv approve (repeatable)")
      ->required();
  run->add_flag("--json", rr.json, "machine-readable output");
  run->footer(
      "Every node checks the certificate itself (operation repair, quorum of distinct\n"
      "custodians, unexpired, the manifest it names still current) and every step against the\n"
      "plan in it. Nodes that were unreachable keep the older manifest revision and are named.\n"
      "Run qv scrub afterwards to see the backup healthy.");
  auto* bench = repair->add_subcommand(
      "bench", "Measure scrub, repair and share recovery on this machine, beside its limits");
  bench->add_option("--size", rb.size, "backup size (e.g. 256MiB, 1GiB)")->capture_default_str();
  bench->add_option("--recoveries", rb.recoveries, "share recoveries to time")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  bench->add_option("--work", rb.work, "folder for the nodes' disks (default: a temporary one)");
  bench->add_flag("--json", rb.json, "machine-readable output");
  bench->footer(
      "Runs the real node and coordinator code in one process (the simulator): a backup of\n"
      "--size scrubbed at 1% and 100%, a site lost and repaired onto spares, then --recoveries\n"
      "in-place repairs of a small backup (each a share recovery by t helpers). Prints the\n"
      "machine's SHA-256, Reed-Solomon and disk write rates measured in the same run.");
  return {req, run, bench};
}

int CmdRepairBench(const RepairBenchArgs& a) {
  auto size = ParseSize(a.size);
  if (!size.ok()) return Fail(size.status().WithContext("--size"));
  fs::path work = a.work;
  bool temporary = false;
  std::error_code ec;
  if (work.empty()) {
    work = fs::temp_directory_path() / ("qv-repair-bench-" + std::to_string(::getpid()));
    temporary = true;
  } else if (fs::exists(work, ec) && !fs::is_empty(work, ec)) {
    return Fail(InvalidArgument("--work " + a.work + " is not empty"));
  }
  sim::RepairBenchOptions o;
  o.size = *size;
  o.recoveries = a.recoveries;
  o.work_dir = work;
  auto r = sim::RunRepairBench(o);
  if (temporary) fs::remove_all(work, ec);
  if (!r.ok()) return Fail(r.status());
  std::printf("%s%s", a.json ? r->ToJson().c_str() : r->ToText().c_str(), a.json ? "\n" : "");
  return 0;
}

int CmdRepairRequest(const RepairRequestArgs& a) {
  auto ttl = ParseDuration(a.ttl);
  if (!ttl.ok()) return Fail(ttl.status().WithContext("--ttl"));
  const std::string manifest_file = a.out + ".manifest";
  for (const auto& f : {a.out, manifest_file}) {
    if (fs::exists(f)) return Fail(AlreadyExists(f + " already exists"));
  }
  auto ctx = OpenCluster(a.cluster, a.key, "operator.key");
  if (!ctx.ok()) return Fail(ctx.status());
  auto id = ResolveBackup(a.backup, *ctx->session);
  if (!id.ok()) return Fail(id.status().WithContext("--backup"));
  const Principal* me = nullptr;
  for (const auto& r : ctx->session->config().requesters) {
    if (r.public_key == ctx->key.public_key()) me = &r;
  }
  if (me == nullptr) return Fail(PermissionDenied("this key is not a requester in " + a.cluster));
  std::vector<std::string> problems;
  auto sm = ctx->session->Manifest(*id, &problems);
  if (!sm.ok()) return Fail(sm.status());
  if (*ttl > int64_t{sm->manifest().policy.max_request_seconds}) {
    return Fail(InvalidArgument("--ttl " + a.ttl + " exceeds the backup's policy maximum of " +
                                FormatSeconds(sm->manifest().policy.max_request_seconds)));
  }
  RepairPlan plan;
  if (!a.decommission.empty()) {
    auto planned = PlanDecommission(ctx->session->config(), *sm, a.decommission);
    if (!planned.ok()) return Fail(planned.status().WithContext("--decommission"));
    plan = std::move(planned).value();
  } else if (!a.plan.empty()) {
    auto parsed = ParseRepairPlan(a.plan);
    if (!parsed.ok()) return Fail(parsed.status().WithContext("--plan"));
    plan = std::move(parsed).value();
  } else {
    auto coord = OpenCluster(a.cluster, a.coordinator_key);
    if (!coord.ok()) return Fail(coord.status().WithContext("scrub for the plan (or give --plan)"));
    ScrubOptions o;
    o.sample = 0.01;
    auto h = ScrubBackup(*coord->session, *id, o);
    if (!h.ok()) return Fail(h.status().WithContext("scrub"));
    auto planned = PlanRepair(coord->session->config(), *sm, *h);
    if (!planned.ok()) return Fail(planned.status());
    plan = std::move(planned).value();
  }
  // Refuse here what every node would refuse later.
  auto next = ApplyRepairPlan(*sm, plan, [&](const std::string& n) -> std::optional<std::string> {
    const NodeEntry* e = ctx->session->config().FindNode(n);
    if (e == nullptr) return std::nullopt;
    return e->site;
  });
  if (!next.ok()) return Fail(next.status().WithContext("--plan"));
  QuorumRequest q;
  q.operation = std::string(kOpRepair);
  q.backup_id = *id;
  q.backup_name = Printable(sm->manifest().artifact_name);
  q.manifest_hash = sm->Hash();
  q.requester_id = me->id;
  q.requester_key = ctx->key.public_key();
  // Nothing is released to a repair's requester; the reply key's secret
  // is dropped at once.
  q.reply_key = NewBoxKeyPair().public_key;
  q.purpose = a.purpose;
  q.destination = FormatRepairPlan(plan);
  q.created_unix = static_cast<int64_t>(std::time(nullptr));
  q.expires_unix = q.created_unix + *ttl;
  randombytes_buf(q.nonce.data(), q.nonce.size());
  auto sr = SignedRequest::Sign(q, ctx->key.signer());
  if (!sr.ok()) return Fail(sr.status());
  if (Status st = WriteFileAtomic(manifest_file, sm->encoded(), 0600); !st.ok()) return Fail(st);
  if (Status st = WriteSignedFile(a.out, kArmorRequest, sr->encoded(), a.armor); !st.ok()) {
    return Fail(st);
  }
  if (a.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("request_id", RequestIdToText(sr->id()))
        .Field("backup_id", BackupIdToText(*id))
        .Field("plan", q.destination)
        .Field("expires", Rfc3339(q.expires_unix))
        .Field("request_file", a.out)
        .Field("manifest_file", manifest_file)
        .EndObject();
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  std::printf(
      "request %s\n  repair %s (%s)\n  plan: %s\n  purpose: %s\n  valid %s .. %s\n"
      "  wrote %s and %s (send both to custodians)\n"
      "next: each custodian runs  qv approve --cluster CLUSTER.toml --key CUSTODIAN.key %s --out "
      "APPROVAL\n      then       qv repair run --cluster CLUSTER.toml --request %s --approval "
      "A1 ...\n",
      RequestIdToText(sr->id()).c_str(), BackupIdToText(*id).c_str(), Shown(q.backup_name).c_str(),
      Shown(q.destination).c_str(), Shown(q.purpose).c_str(), Rfc3339(q.created_unix).c_str(),
      Rfc3339(q.expires_unix).c_str(), Shown(a.out).c_str(), Shown(manifest_file).c_str(),
      Shown(a.out).c_str(), Shown(a.out).c_str());
  return 0;
}

int CmdRepairRun(const RepairRunArgs& a) {
  auto loaded = LoadCertificate(a.request, a.approvals);
  if (!loaded.ok()) return Fail(loaded.status());
  const Certificate& cert = *loaded;
  const SignedRequest* sr = &cert.request;
  if (sr->request().operation != kOpRepair) {
    return Fail(InvalidArgument(a.request + " asks to " + Printable(sr->request().operation) +
                                ", not to repair (use qv restore run)"));
  }
  auto ctx = OpenCluster(a.cluster, a.key);
  if (!ctx.ok()) return Fail(ctx.status());
  Progress progress("repair", !a.json);
  auto report = RunRepair(*ctx->session, cert, progress.fn());
  progress.Clear();
  if (!report.ok()) return Fail(report.status());
  for (const auto& p : report->problems) Warn(p);
  if (a.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("backup_id", BackupIdToText(report->id))
        .Field("request_id", RequestIdToText(sr->id()))
        .Field("revision", uint64_t{report->revision})
        .Field("bytes_rebuilt", report->bytes_rebuilt)
        .Field("bytes_read", report->bytes_read)
        .Field("shares_rebuilt", uint64_t{report->shares_rebuilt})
        .Field("nodes_updated", uint64_t{report->nodes_updated})
        .Field("nodes_wiped", uint64_t{report->nodes_wiped})
        .Field("seconds", report->seconds);
    j.Key("problems").BeginArray();
    for (const auto& p : report->problems) j.String(p);
    j.EndArray().EndObject();
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  std::printf(
      "repaired %s under request %s: %s rebuilt from %s read, %zu share(s) rebuilt by share "
      "recovery, manifest revision %u on %zu other node(s), %zu node(s) wiped their copy, in "
      "%.2fs\n"
      "next: qv scrub --cluster %s --backup %s\n",
      BackupIdToText(report->id).c_str(), RequestIdToText(sr->id()).substr(0, 16).c_str(),
      FormatBytes(report->bytes_rebuilt).c_str(), FormatBytes(report->bytes_read).c_str(),
      report->shares_rebuilt, report->revision, report->nodes_updated, report->nodes_wiped,
      report->seconds, Shown(a.cluster).c_str(), BackupIdToText(report->id).c_str());
  return 0;
}

}  // namespace qv
