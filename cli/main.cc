// qv: the quorumvault command line. Thin by design: it parses arguments,
// calls the coordinator, and prints. Exit codes: 0 success, 1 the operation
// failed (one line on stderr names why), 2 bad usage.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/file_util.h"
#include "base/json.h"
#include "base/text.h"
#include "cli/audit_cmd.h"
#include "cli/catalog_cmd.h"
#include "cli/ceremony_cmd.h"
#include "cli/cli_util.h"
#include "cli/completion.h"
#include "cli/discovery.h"
#include "cli/drill_cmd.h"
#include "cli/enroll_cmd.h"
#include "cli/repair_cmd.h"
#include "cli/restore_cmd.h"
#include "cli/token_cmd.h"
#include "configs/local_cluster.h"
#include "coordinator/audit_check.h"
#include "coordinator/bench.h"
#include "coordinator/ceremony.h"
#include "coordinator/cluster.h"
#include "coordinator/local_cluster_ctl.h"
#include "coordinator/local_store.h"
#include "coordinator/pipeline.h"
#include "coordinator/repair.h"
#include "coordinator/sample.h"
#include "coordinator/scrub.h"
#include "crypto/identity.h"
#include "crypto/secretbox.h"
#include "node/daemon.h"
#include "quorum/request.h"
#include "quorum/verify.h"

namespace fs = std::filesystem;

namespace qv {
namespace {

constexpr const char* kVersion = "qv 0.1.0";

// The words every help page may use, defined once.
constexpr std::string_view kConcepts =
    "Words used here:\n"
    "  custodian   a person whose signed approval counts toward a restore; listed with a key\n"
    "              in the cluster file and fixed into each backup's signed policy\n"
    "  requester   (the operator) asks for a restore, and alone may present the approvals\n"
    "  quorum      how many distinct custodians must approve (M of the N listed); one\n"
    "              custodian's denial vetoes\n"
    "  k, m, t     k data + m parity fragments, one per node (any k rebuild the data); the\n"
    "              key is split into shares, one per node, and any t of them rebuild it\n";

// The cluster file this run would use (--cluster, QV_CLUSTER, found), if
// it loads: for the defaults help shows.
std::optional<ClusterConfig> FoundCluster(const std::vector<std::string>& words) {
  std::string path;
  for (size_t i = 0; i < words.size(); ++i) {
    if (words[i] == "--cluster" && i + 1 < words.size()) path = words[i + 1];
    if (words[i].rfind("--cluster=", 0) == 0) path = words[i].substr(10);
  }
  if (path.empty()) path = DefaultClusterFile();
  if (path.empty()) return std::nullopt;
  std::error_code ec;
  if (fs::is_directory(path, ec)) path = (fs::path(path) / "cluster.toml").string();
  auto c = ClusterConfig::Load(path);
  return c.ok() ? std::optional<ClusterConfig>(std::move(c).value()) : std::nullopt;
}

struct BackupArgs {
  std::string local, cluster, key, cipher = "chacha20-poly1305", unit = "256KiB", parent;
  std::string commit_window = "10m";
  uint32_t k = 4, m = 2, t = 3;
  bool kmt_given = false;  // --k/--m/--t on the command line
  std::vector<std::string> paths;
  bool json = false;
  std::string name;
  bool name_given = false;  // --name on the command line, even empty
  std::vector<std::string> tags;
};

Status OneOf(const std::string& local, const std::string& cluster) {
  if (local.empty() == cluster.empty())
    return InvalidArgument("give exactly one of --local DIR or --cluster FILE");
  return Status::Ok();
}

int CmdBackup(const BackupArgs& a) {
  if (Status s = OneOf(a.local, a.cluster); !s.ok()) return FailUsage(s);
  BackupOptions opt;
  opt.k = a.k;
  opt.m = a.m;
  opt.t = a.t;
  opt.tool_version = kVersion;
  auto cipher = ParseCipherSuite(a.cipher);
  if (!cipher.ok()) return Fail(cipher.status());
  opt.cipher = *cipher;
  auto unit = ParseSize(a.unit);
  if (!unit.ok()) return Fail(unit.status());
  if (*unit > kMaxUnitSize) return Fail(InvalidArgument("--unit at most 16MiB"));
  opt.max_unit_size = static_cast<uint32_t>(*unit);
  if (a.name_given) {
    if (Status st = ValidateBackupName(a.name); !st.ok()) return Fail(st.WithContext("--name"));
    opt.name = a.name;
  }
  for (const auto& t : a.tags) {
    if (Status st = ValidateTag(t); !st.ok()) return Fail(st.WithContext("--tag"));
    if (std::count(a.tags.begin(), a.tags.end(), t) > 1) {
      return Fail(InvalidArgument("--tag " + t + " given twice"));
    }
  }
  if (a.tags.size() > Manifest::kMaxTags) {
    return Fail(InvalidArgument("at most " + std::to_string(Manifest::kMaxTags) + " tags"));
  }
  opt.tags = a.tags;
  auto signer = SigningKey::Load(a.key);
  if (!signer.ok()) return Fail(signer.status());
  std::vector<fs::path> paths(a.paths.begin(), a.paths.end());
  auto artifact = ScanPaths(paths);
  if (!artifact.ok()) return Fail(artifact.status());
  if (a.k < 1 || a.k + a.m > 255 || a.t < 1 || a.t > a.k + a.m) {
    return Fail(InvalidArgument(
        "need 1 <= k, k + m <= 255 and 1 <= t <= k + m (got k=" + std::to_string(a.k) +
        " m=" + std::to_string(a.m) + " t=" + std::to_string(a.t) + ")"));
  }
  auto window = ParseDuration(a.commit_window);
  if (!window.ok()) return Fail(window.status().WithContext("--commit-window"));
  if (*window > 7 * 86400) return Fail(InvalidArgument("--commit-window: at most 7d"));
  opt.commit_window_seconds = *window;
  Progress progress("backup", !a.json);
  opt.progress = progress.fn();
  Result<BackupOutcome> result = Internal("no destination");
  std::string where = a.local;
  if (!a.cluster.empty()) {
    auto cluster = ClusterConfig::Load(a.cluster);
    if (!cluster.ok()) return Fail(cluster.status());
    if ((*signer)->public_key() != cluster->coordinator) {
      return Fail(PermissionDenied(a.key + " is not the coordinator key pinned in " + a.cluster));
    }
    if (!a.kmt_given) {
      opt.k = cluster->k;
      opt.m = cluster->m;
      opt.t = cluster->t;
    }
    auto session = ClusterSession::Open(*cluster, signer->get());
    if (!session.ok()) return Fail(session.status());
    if (!a.parent.empty()) {
      auto parent = ResolveBackup(a.parent, **session);
      if (!parent.ok()) return Fail(parent.status().WithContext("--parent"));
      opt.parent_backup = BackupIdToText(*parent);
    }
    result = (*session)->Backup(*artifact, opt);
    progress.Clear();
    where = a.cluster;
  } else {
    auto store = LocalStore::Open(a.local);
    if (!store.ok()) return Fail(store.status());
    if (!a.parent.empty()) {
      ManifestSource src;
      src.store = std::move(store).value();
      auto parent = ResolveBackup(a.parent, src);
      if (!parent.ok()) return Fail(parent.status().WithContext("--parent"));
      opt.parent_backup = BackupIdToText(*parent);
      store = std::move(src.store);
    }
    result = RunBackup(*artifact, **store, **signer, opt);
    progress.Clear();
  }
  if (!result.ok()) return Fail(result.status());
  for (const auto& p : result->problems) Warn(p);
  const Manifest& m = result->manifest.manifest();
  const std::string id = BackupIdToText(m.backup_id);
  const double mbps = result->plaintext_bytes / std::max(result->seconds, 1e-9) / 1e6;
  if (a.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("backup_id", id)
        .Field("artifact", m.artifact_name)
        .Field("files", uint64_t{m.files.size()})
        .Field("bytes", result->plaintext_bytes)
        .Field("stored_bytes", result->stored_bytes)
        .Field("k", uint64_t{m.k})
        .Field("m", uint64_t{m.m})
        .Field("t", uint64_t{m.t})
        .Field("cipher", CipherSuiteName(m.cipher))
        .Field("seconds", result->seconds)
        .Field("mb_per_s", mbps)
        .Field("manifest_sha256", HexEncode(result->manifest.Hash()))
        .EndObject();
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  std::fprintf(stderr,
               "backed up %s: %zu files, %s in %.2fs (%.0f MB/s)\n"
               "  %s, k=%u data + m=%u parity fragments, key split %u-of-%u\n"
               "  stored %s across %u nodes of %s\n",
               Shown(m.artifact_name).c_str(), m.files.size(),
               FormatBytes(result->plaintext_bytes).c_str(), result->seconds, mbps,
               std::string(CipherSuiteName(m.cipher)).c_str(), m.k, m.m, m.t, m.n(),
               FormatBytes(result->stored_bytes).c_str(), m.n(), Shown(where).c_str());
  std::printf("%s\n", id.c_str());
  return 0;
}

struct RestoreArgs {
  std::string local, cluster, key, backup, dest, signer;
  bool json = false;
};

int CmdRestore(const RestoreArgs& a) {
  if (Status s = OneOf(a.local, a.cluster); !s.ok()) return FailUsage(s);
  Result<BackupId> id = BackupIdFromText(a.backup);
  if (a.cluster.empty() && fs::is_directory(a.local)) {
    auto src = OpenManifests({a.local, "", ""});
    if (src.ok()) id = ResolveBackup(a.backup, *src);
  }
  if (!id.ok()) return Fail(id.status().WithContext("--backup"));
  std::optional<PublicKey> expected;
  if (!a.signer.empty()) {
    auto pk = PublicKeyFromText(a.signer);
    if (!pk.ok()) return Fail(pk.status().WithContext("--signer"));
    expected = *pk;
  }
  std::vector<std::string> problems;
  Progress progress("restore", !a.json);
  RestoreOptions opt;
  opt.progress = progress.fn();
  Result<RestoreReport> report = Internal("no source");
  std::optional<SignedManifest> sm;
  if (!a.cluster.empty()) {
    return Fail(PermissionDenied(
        "a cluster restore needs a quorum certificate: qv restore request, qv approve (by the "
        "custodians), then qv restore run"));
  } else {
    if (!fs::is_directory(a.local)) return Fail(NotFound(a.local + ": no such folder"));
    auto store = LocalStore::Open(a.local);
    if (!store.ok()) return Fail(store.status());
    auto m = (*store)->LoadManifest(*id, expected ? &*expected : nullptr, &problems);
    if (!m.ok()) return Fail(m.status());
    sm = std::move(m).value();
    std::vector<std::string> notes;
    auto writer = NewFolderWriter(a.dest, &notes);
    for (const auto& n : notes) Warn(n);
    if (!writer.ok()) return Fail(writer.status());
    auto sources = (*store)->OpenSources(*sm, &problems);
    auto shares = (*store)->ReadShares(*sm, &problems);
    report = RunRestore(*sm, std::move(sources), std::move(shares), **writer, opt);
    progress.Clear();
  }
  for (const auto& p : problems) Warn(p);
  if (!report.ok()) return Fail(report.status());
  const Manifest& m = sm->manifest();
  const double mbps = report->plaintext_bytes / std::max(report->seconds, 1e-9) / 1e6;
  if (a.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("backup_id", BackupIdToText(m.backup_id))
        .Field("dest", a.dest)
        .Field("files", uint64_t{m.files.size()})
        .Field("bytes", report->plaintext_bytes)
        .Field("seconds", report->seconds)
        .Field("mb_per_s", mbps)
        .Field("reconstructed", report->reconstructed)
        .Field("signer", PublicKeyToText(sm->signer()));
    j.Key("fragments_used").BeginArray();
    for (uint32_t f : report->fragments_used) j.UInt(f);
    j.EndArray().Key("problems").BeginArray();
    for (const auto& p : problems) j.String(p);
    for (const auto& p : report->problems) j.String(p);
    j.EndArray().EndObject();
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  for (const auto& p : report->problems) Warn(p);
  std::string used;
  for (uint32_t f : report->fragments_used) used += (used.empty() ? "" : ",") + std::to_string(f);
  std::printf(
      "restored %s to %s: %zu files, %s in %.2fs (%.0f MB/s)\n"
      "  fragments used: %s%s; every unit, chunk and file verified against the manifest\n"
      "  manifest signed by %s\n",
      Shown(m.artifact_name).c_str(), Shown(a.dest).c_str(), m.files.size(),
      FormatBytes(report->plaintext_bytes).c_str(), report->seconds, mbps, used.c_str(),
      report->reconstructed ? " (missing data rebuilt from parity)" : "",
      PublicKeyToText(sm->signer()).c_str());
  return 0;
}

// Where list/show read manifests from: a local layout or a cluster.

struct ScrubArgs {
  std::string cluster, key, backup;
  double sample = 0.01;
  bool json = false;
};

// Exit 0 when every backup scrubbed is healthy, 1 otherwise.
int CmdScrub(const ScrubArgs& a) {
  auto ctx = OpenCluster(a.cluster, a.key);
  if (!ctx.ok()) return Fail(ctx.status());
  std::vector<BackupId> ids;
  if (!a.backup.empty()) {
    auto id = ResolveBackup(a.backup, *ctx->session);
    if (!id.ok()) return Fail(id.status().WithContext("--backup"));
    ids.push_back(*id);
  } else {
    auto listed = ctx->session->List();
    if (!listed.ok()) return Fail(listed.status());
    for (const auto& l : *listed) ids.push_back(l.id);
  }
  ScrubOptions o;
  o.sample = a.sample;
  bool all_healthy = true;
  JsonWriter j;
  j.BeginArray();
  for (const auto& id : ids) {
    auto h = ScrubBackup(*ctx->session, id, o);
    if (!h.ok()) {
      all_healthy = false;
      Warn(BackupIdToText(id) + ": " + h.status().message());
      continue;
    }
    all_healthy = all_healthy && h->state == "healthy";
    if (a.json) {
      j.BeginObject()
          .Field("backup_id", BackupIdToText(id))
          .Field("artifact", h->name)
          .Field("state", h->state)
          .Field("good_fragments", uint64_t{h->good_fragments})
          .Field("good_shares", uint64_t{h->good_shares})
          .Field("k", uint64_t{h->k})
          .Field("t", uint64_t{h->t});
      j.Key("fragments").BeginArray();
      for (const auto& f : h->fragments) {
        j.BeginObject()
            .Field("fragment", uint64_t{f.fragment})
            .Field("node", f.node)
            .Field("reachable", f.reachable)
            .Field("data_ok", f.data_ok)
            .Field("share_ok", f.share_ok)
            .Field("units_checked", f.units_checked)
            .Field("units_whole", f.units_whole);
        if (f.coverage_known) {
          j.Key("coverage")
              .BeginObject()
              .Field("cursor", f.coverage.cursor)
              .Field("full_passes", f.coverage.cycle)
              .Field("pass_started", f.coverage.cycle_started == 0
                                         ? std::string()
                                         : Rfc3339(f.coverage.cycle_started))
              .Field("last_full_pass", f.coverage.last_complete == 0
                                           ? std::string()
                                           : Rfc3339(f.coverage.last_complete))
              .EndObject();
        }
        j.Key("problems").BeginArray();
        for (const auto& p : f.problems) j.String(p);
        j.EndArray().EndObject();
      }
      j.EndArray().EndObject();
      continue;
    }
    std::printf("%s  %-24s %-9s fragments %zu/%zu good (k=%u), shares %zu/%zu proved (t=%u)\n",
                BackupIdToText(id).c_str(), Shown(h->name).c_str(), h->state.c_str(),
                h->good_fragments, h->fragments.size(), h->k, h->good_shares, h->fragments.size(),
                h->t);
    for (const auto& f : h->fragments) {
      for (const auto& p : f.problems) {
        std::printf("    %s (fragment %u): %s\n", Shown(f.node).c_str(), f.fragment,
                    Shown(p).c_str());
      }
    }
    // Coverage: the node whose rotation through its fragment is least far.
    const FragmentHealth* least = nullptr;
    for (const auto& f : h->fragments) {
      if (!f.coverage_known) continue;
      if (least == nullptr || f.coverage.cycle < least->coverage.cycle ||
          (f.coverage.cycle == least->coverage.cycle &&
           f.coverage.cursor < least->coverage.cursor)) {
        least = &f;
      }
    }
    if (least != nullptr) {
      // Built first: a temporary's c_str() must outlive the printf.
      const std::string last =
          least->coverage.last_complete == 0
              ? ""
              : "; its last full pass ended " + Rfc3339(least->coverage.last_complete);
      std::printf(
          "    coverage: %llu full pass(es) over every unit; least covered %s, %llu of "
          "%llu units into the next%s\n",
          static_cast<unsigned long long>(least->coverage.cycle), Shown(least->node).c_str(),
          static_cast<unsigned long long>(least->coverage.cursor),
          static_cast<unsigned long long>(h->stripes), last.c_str());
    }
  }
  j.EndArray();
  if (a.json) std::printf("%s\n", j.str().c_str());
  return all_healthy ? 0 : 1;
}

int CmdStatus(const std::string& cluster, const std::string& key, bool json,
              const std::string& source) {
  auto ctx = OpenCluster(cluster, key);
  if (!ctx.ok()) return Fail(ctx.status());
  if (!json) std::printf("cluster file: %s (from %s)\n", Shown(cluster).c_str(), source.c_str());
  auto health = ctx->session->Health();
  int down = 0;
  JsonWriter j;
  j.BeginArray();
  // The cluster at a glance, from what each node says of itself.
  uint64_t published = 0, prepared = 0, stored = 0, alerts = 0, pending = 0;
  int64_t witnessed = 0;
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  for (const auto& h : health) {
    down += !h.ok;
    if (h.stats) {
      published = std::max(published, h.stats->backups_published);
      prepared = std::max(prepared, h.stats->backups_prepared);
      pending = std::max(pending, h.stats->pending_requests);
      stored += h.stats->stored_bytes;
      alerts += h.stats->alerts;
      witnessed = std::max(witnessed, h.stats->last_witness);
    }
    if (json) {
      j.BeginObject()
          .Field("node", h.id)
          .Field("site", h.site)
          .Field("address", h.address)
          .Field("ok", h.ok)
          .Field("detail", h.detail)
          .Field("ms", h.ms);
      if (h.skew) j.Key("clock_skew_s").Int(*h.skew);
      if (h.stats) {
        j.Field("backups_published", h.stats->backups_published)
            .Field("backups_committing", h.stats->backups_prepared)
            .Field("stored_bytes", h.stats->stored_bytes)
            .Field("free_bytes", h.stats->free_bytes)
            .Field("pending_requests", h.stats->pending_requests)
            .Field("audit_alerts", h.stats->alerts);
        if (h.stats->last_witness > 0) {
          j.Field("last_witness", Rfc3339(h.stats->last_witness));
        }
      }
      j.EndObject();
    } else {
      const std::string skew =
          h.skew ? (*h.skew >= 0 ? "+" : "") + std::to_string(*h.skew) + " s" : "?";
      std::printf("%-10s %-10s %-22s %-5s %6.1f ms  clock %-8s %s\n", Shown(h.id).c_str(),
                  Shown(h.site).c_str(), Shown(h.address).c_str(), h.ok ? "up" : "DOWN", h.ms,
                  skew.c_str(), Shown(h.detail).c_str());
      if (h.stats) {
        std::printf(
            "           %llu backup(s)%s, %s stored, %s free, %llu pending, %llu alert(s)\n",
            static_cast<unsigned long long>(h.stats->backups_published),
            h.stats->backups_prepared == 0
                ? ""
                : (" (+" + std::to_string(h.stats->backups_prepared) + " committing)").c_str(),
            FormatBytes(h.stats->stored_bytes).c_str(), FormatBytes(h.stats->free_bytes).c_str(),
            static_cast<unsigned long long>(h.stats->pending_requests),
            static_cast<unsigned long long>(h.stats->alerts));
      }
    }
  }
  if (!json) {
    std::printf(
        "cluster %s: %zu of %zu nodes up; %llu backup(s)%s; %s stored in all; %llu pending "
        "request(s); last witness round %s; %llu audit alert(s)%s\n",
        Shown(ctx->session->config().name).c_str(), health.size() - down, health.size(),
        static_cast<unsigned long long>(published),
        prepared == 0 ? "" : (" (+" + std::to_string(prepared) + " committing)").c_str(),
        FormatBytes(stored).c_str(), static_cast<unsigned long long>(pending),
        witnessed == 0 ? "never"
                       : (FormatSeconds(std::max<int64_t>(0, now - witnessed)) + " ago").c_str(),
        static_cast<unsigned long long>(alerts),
        alerts == 0 ? "" : " (qv audit log --cluster FILE shows them)");
  }
  j.EndArray();
  if (json) std::printf("%s\n", j.str().c_str());
  if (down > 0) {
    size_t unpinned = 0;
    for (const auto& h : health) unpinned += h.detail.find("is not pinned") != std::string::npos;
    if (unpinned == health.size()) {
      return Fail(PermissionDenied("no node pins this key (" +
                                   KeyBeside(cluster, key, "coordinator.key") +
                                   "): use a key listed in " + cluster));
    }
    std::fprintf(stderr, "qv: error: %d of %zu nodes unhealthy or unreachable\n", down,
                 health.size());
    return 1;
  }
  return 0;
}

int CmdClusterInit(const std::string& dir, const LocalClusterOptions& o) {
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

int CmdClusterUp(const std::string& dir) {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Fail(IoError("cannot find the qv binary: " + ec.message()));
  auto nodes = ClusterUp(dir, self, std::chrono::seconds(20));
  if (!nodes.ok()) return Fail(nodes.status());
  for (const auto& n : *nodes) {
    std::printf("%-8s up at %-22s pid %d\n", Shown(n.id).c_str(), Shown(n.address).c_str(), n.pid);
  }
  return 0;
}

int CmdClusterDown(const std::string& dir) {
  auto stopped = ClusterDown(dir, std::chrono::seconds(5));
  if (!stopped.ok()) return Fail(stopped.status());
  std::printf("stopped %d node(s)\n", *stopped);
  return 0;
}

int CmdBench(const std::string& size, bool json) {
  BenchOptions opt;
  auto bytes = ParseSize(size);
  if (!bytes.ok()) return Fail(bytes.status());
  if (*bytes < (1u << 20)) return Fail(InvalidArgument("--size must be at least 1MiB"));
  opt.pipeline_bytes = *bytes;
  if (!json)
    std::fprintf(stderr, "measuring stages and the pipeline on %s...\n",
                 FormatBytes(*bytes).c_str());
  auto r = RunBench(opt);
  if (!r.ok()) return Fail(r.status());
  if (json) {
    JsonWriter j;
    j.BeginObject().Field("cores", uint64_t(r->cores)).Key("stages").BeginArray();
    for (const auto& s : r->stages) {
      j.BeginObject().Field("name", s.name).Field("mb_per_s", s.mb_per_s).EndObject();
    }
    j.EndArray().Key("pipelines").BeginArray();
    for (const auto& p : r->pipelines) {
      j.BeginObject()
          .Field("name", p.name)
          .Field("cores", uint64_t(p.cores))
          .Field("mb_per_s", p.mb_per_s)
          .Field("limit_mb_per_s", p.limit)
          .Field("fraction_of_limit", p.mb_per_s / p.limit)
          .EndObject();
    }
    j.EndArray()
        .Field("cluster_backup_limit_mb_per_s", r->cluster_backup_limit)
        .Field("cluster_restore_limit_mb_per_s", r->cluster_restore_limit)
        .Key("certificates")
        .BeginObject()
        .Field("custodians", uint64_t(r->certificates.custodians))
        .Field("quorum", uint64_t(r->certificates.quorum))
        .Field("signatures_per_certificate", uint64_t(r->certificates.signatures))
        .Field("verified_per_s", r->certificates.certificates_per_s)
        .Field("ed25519_verifies_per_s", r->certificates.ed25519_verifies_per_s)
        .EndObject()
        .EndObject();
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  std::printf("%-48s %8s\n", "stage (one core)", "MB/s");
  for (const auto& s : r->stages) std::printf("  %-46s %8.0f\n", s.name.c_str(), s.mb_per_s);
  std::printf(
      "\n%-48s %8s %8s %9s\n",
      ("pipeline (k=" + std::to_string(opt.k) + " m=" + std::to_string(opt.m) + ", in memory)")
          .c_str(),
      "MB/s", "limit", "of limit");
  for (const auto& p : r->pipelines) {
    std::printf("  %-46s %8.0f %8.0f %8.1f%%\n", p.name.c_str(), p.mb_per_s, p.limit,
                100 * p.mb_per_s / p.limit);
  }
  std::printf("\n%-48s %8.0f\n%-48s %8.0f\n", "compute limit, backup through a cluster",
              r->cluster_backup_limit, "compute limit, restore through a cluster",
              r->cluster_restore_limit);
  const auto& c = r->certificates;
  const double bound = c.ed25519_verifies_per_s / c.signatures;
  const std::string check_name = "release certificate check, M=" + std::to_string(c.quorum) +
                                 " of " + std::to_string(c.custodians) + " (one core)";
  const std::string bound_name =
      "  bound: Ed25519 verify / " + std::to_string(c.signatures) + " signatures";
  std::printf("\n%-48s %8.0f /s  (%.1f%% of bound)\n%-48s %8.0f /s\n%-48s %8.0f /s\n",
              check_name.c_str(), c.certificates_per_s, 100 * c.certificates_per_s / bound,
              "  Ed25519 verify (one core)", c.ed25519_verifies_per_s, bound_name.c_str(), bound);
  std::printf(
      "\nlimit = cores / sum of per-byte stage costs (backup: sha file + aead + rs + n/k sha "
      "units;\n"
      "        restore: sha units + aead + sha file [+ rs decode]), measured above in this run\n");
  return 0;
}

int CmdSample(const std::string& out, const std::string& size, int shards) {
  auto bytes = ParseSize(size);
  if (!bytes.ok()) return Fail(bytes.status());
  Status s = WriteSampleModel(out, *bytes, shards);
  if (!s.ok()) return Fail(s);
  std::printf("wrote sample model to %s (%s of weights in %d safetensors shards)\n",
              Shown(out).c_str(), FormatBytes(*bytes).c_str(), shards);
  return 0;
}

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
  auto* backup = app.add_subcommand("backup", "Back up a model file or folder");
  auto* b_local =
      backup->add_option("--local", b.local, "development layout: one folder per node under DIR");
  auto* b_cluster =
      backup->add_option("--cluster", b.cluster, "cluster file: back up to its nodes");
  b_local->excludes(b_cluster);
  backup->add_option("--key", b.key, "signer's secret key (the coordinator key for --cluster)")
      ->required();
  // The defaults shown are the cluster file's when one is found (what a
  // backup to it would use), else the --local ones.
  const std::optional<ClusterConfig> found = FoundCluster(words);
  auto* b_k = backup->add_option("--k", b.k, "k: data fragments; any k of them rebuild the data");
  auto* b_m = backup->add_option("--m", b.m, "m: parity fragments; up to m nodes may be lost");
  auto* b_t = backup->add_option("--t", b.t,
                                 "t: key shares (one per node) needed to restore; fewer reveal "
                                 "nothing of the key");
  for (auto [o, v] :
       {std::pair{b_k, found ? found->k : b.k}, std::pair{b_m, found ? found->m : b.m},
        std::pair{b_t, found ? found->t : b.t}}) {
    o->default_str(std::to_string(v) + (found ? " (the cluster file's)" : ""));
  }
  backup->add_option("--cipher", b.cipher, "chacha20-poly1305 or aes-256-gcm (FIPS sites)")
      ->capture_default_str();
  backup->add_option("--unit", b.unit, "stripe unit: bytes per fragment per stripe")
      ->capture_default_str();
  backup->add_option("--parent", b.parent,
                     "the backup this one derives from (provenance): id, id prefix, latest or "
                     "latest:NAME");
  backup->add_option("--name", b.name,
                     "the backup's name, e.g. llama-3-8b (default: the model's own name when its "
                     "folder says it, a Hugging Face snapshot's repo id or config.json "
                     "_name_or_path, else the folder's name)");
  // One value per --tag, so `--tag prod ./model` leaves the path a path.
  backup->add_option("--tag", b.tags, "a label such as prod or step-12000 (repeatable)")
      ->allow_extra_args(false);
  backup
      ->add_option("--commit-window", b.commit_window,
                   "how long nodes keep a prepared backup waiting for the commit decision "
                   "before they presume abort (e.g. 90s, 10m, 1h)")
      ->capture_default_str();
  backup->add_flag("--json", b.json, "machine-readable output");
  backup
      ->add_option("paths", b.paths, "files or folders (a model folder: shards, tokenizer, config)")
      ->required()
      ->check(CLI::ExistingPath);
  backup->footer(
      "Prints the backup id on stdout. Example:\n"
      "  qv backup --local vault --key signer.key --k 4 --m 2 --t 3 ./my-model\n" +
      std::string(kConcepts));

  RestoreArgs r;
  auto* restore =
      app.add_subcommand("restore", "Restore a backup from any t shares and k fragments");
  auto* r_local =
      restore->add_option("--local", r.local, "development layout folder used at backup");
  auto* r_cluster =
      restore->add_option("--cluster", r.cluster, "cluster file: restore from its nodes");
  r_local->excludes(r_cluster);
  restore->add_option("--key", r.key,
                      "coordinator key (default: coordinator.key beside the cluster file)");
  restore->add_option("--backup", r.backup, "backup id (32 hex characters)");
  restore->add_option("--dest", r.dest, "new folder to restore into (must not exist)");
  restore->require_subcommand(0, 1);

  RequestArgs rq;
  auto* r_request = restore->add_subcommand(
      "request", "Ask for a restore: a signed request custodians can approve");
  r_request->add_option("--cluster", rq.cluster, "cluster file")->required();
  r_request->add_option("--key", rq.key,
                        "requester key (default: operator.key beside the cluster file)");
  r_request->add_option("--backup", rq.backup, "backup id (32 hex characters)")->required();
  r_request->add_option("--purpose", rq.purpose, "why, in words custodians will read")->required();
  r_request->add_option("--destination", rq.destination, "where the restore will land (label)");
  r_request->add_option("--ttl", rq.ttl, "how long custodians have (e.g. 30m, 4h, 1d)")
      ->capture_default_str();
  r_request->add_option("--valid-from", rq.valid_from,
                        "start of validity, unix seconds (default: now)");
  r_request
      ->add_option("--out", rq.out, "request file to write; its one-time secret goes to OUT.key")
      ->required();
  r_request->add_flag("--json", rq.json, "machine-readable output");
  r_request->add_flag("--armor", rq.armor,
                      "write the request as ASCII armor, to paste into a ticket or chat");
  r_request->add_flag("--submit", rq.submit,
                      "also post it to the nodes: custodians find it with qv pending");
  r_request->footer(
      "Writes OUT (public: give it to custodians) and OUT.key (0600: the one-time secret that\n"
      "opens released shares; never send it). Example:\n"
      "  qv restore request --cluster cl/cluster.toml --backup ID --purpose 'DR drill' --out "
      "req\n" +
      std::string(kConcepts));

  RunArgs rr;
  auto* r_run = restore->add_subcommand(
      "run", "Present a request and its approvals to the nodes and restore");
  r_run->add_option("--cluster", rr.cluster, "cluster file")->required();
  r_run->add_option("--key", rr.key,
                    "identity for the node channels (default: operator.key beside the cluster)");
  r_run
      ->add_option("--request", rr.request,
                   "request file from qv restore request, or (with --request-key) its id")
      ->required();
  r_run->add_option("--request-key", rr.request_key, "its one-time secret (default: REQUEST.key)");
  r_run->add_option("--approval", rr.approvals,
                    "approval files from qv approve (repeatable; none: the approvals custodians "
                    "posted to the nodes)");
  r_run->add_option("--dest", rr.dest, "new folder to restore into (must not exist)")->required();
  r_run->add_flag("--json", rr.json, "machine-readable output");
  r_run->footer(
      "Every node checks the certificate itself (quorum of distinct custodians from the backup's\n"
      "signed policy, none of them the requester; unexpired; never used before) and releases its\n"
      "share sealed to the request's one-time key. Refusals are printed with each node's reason.");

  ApproveArgs ap;
  auto* approve = app.add_subcommand("approve", "Show a restore request and sign an approval");
  approve
      ->add_option("--cluster", ap.cluster,
                   "cluster file: the pinned coordinator key the manifest must verify under, "
                   "and the requesters")
      ->required();
  approve
      ->add_option("--key", ap.key,
                   "your custodian key: a file, or pkcs11:token=...;object=... (a key in a "
                   "hardware token)")
      ->required();
  approve->footer(std::string(kConcepts));
  approve->add_option("--as", ap.as, "custodian id (default: the policy's name for --key)");
  approve->add_option("file", ap.request, "request file (the file flow)");
  approve->add_option("--request", ap.request_id,
                      "a request id (or 8+ characters of it) pending on the nodes (qv pending): "
                      "fetched from them, and the vote posted back");
  approve->add_option("--manifest", ap.manifest,
                      "the backup's signed manifest (default: REQUEST.manifest, written by qv "
                      "restore request)");
  approve->add_option("--out", ap.out,
                      "approval file to write (required for a request file; optional with "
                      "--request)");
  approve->add_flag("--deny", ap.deny, "sign a refusal instead");
  approve->add_flag("--armor", ap.armor, "write the approval as ASCII armor (to paste)");
  approve->add_flag("--json", ap.json, "machine-readable output (what was signed and posted)");
  approve->add_option("--note", ap.note, "a remark recorded with the decision");
  approve->add_flag("--yes", ap.yes, "do not ask for confirmation on a terminal");

  AuditArgs audit_args;
  const AuditCommands audit_cmds = AddAuditCommands(app, audit_args);
  restore->add_option("--signer", r.signer, "require the manifest to be signed by this public key");
  restore->add_flag("--json", r.json, "machine-readable output");
  restore->footer(
      "Bad or missing fragments and shares are named and routed around; nothing appears at\n"
      "--dest unless every file matches its signed SHA-256.");

  CatalogArgs catalog;
  const CatalogCommands catalog_cmds = AddCatalogCommands(app, catalog);
  ScrubArgs sc;
  auto* scrub = app.add_subcommand(
      "scrub", "Check that every node still holds its data and key share; exit 1 unless healthy");
  scrub->footer(
      "No node's word is trusted and no share is seen: random units of each fragment are proved\n"
      "against the signed manifest's Merkle roots (a few sent whole), and each share by a proof\n"
      "of knowledge against the Feldman commitments. Each backup is healthy, degraded, at risk\n"
      "(one more failure loses it) or lost; qv repair request plans the fix.");
  scrub->add_option("--cluster", sc.cluster, "cluster file")->required();
  scrub->add_option("--key", sc.key, "coordinator key (default: beside the cluster file)");
  scrub->add_option("--backup", sc.backup,
                    "one backup: id, id prefix, latest or latest:NAME (default: every one)");
  scrub
      ->add_option("--sample", sc.sample,
                   "fraction of each fragment's units to challenge (1 checks every unit)")
      ->check(CLI::Range(0.0001, 1.0))
      ->capture_default_str();
  scrub->add_flag("--json", sc.json, "machine-readable output");

  std::string status_cluster, status_key;
  bool status_json = false;
  auto* status = app.add_subcommand("status", "Health of every node; exit 1 if any is unreachable");
  status->add_option("--cluster", status_cluster, "cluster file")->required();
  status->add_option("--key", status_key, "coordinator key (default: beside the cluster file)");
  status->add_flag("--json", status_json, "machine-readable output");

  auto* cluster =
      app.add_subcommand("cluster", "Create, start and stop a local cluster; enroll nodes");
  cluster->require_subcommand(1);
  std::string cl_dir;
  LocalClusterOptions cl_opt;
  auto* cl_init = cluster->add_subcommand("init", "Generate keys and config for a local cluster");
  cl_init->add_option("--dir", cl_dir, "folder to create")->required();
  cl_init->add_option("--sites", cl_opt.sites, "sites")->capture_default_str();
  cl_init->add_option("--nodes-per-site", cl_opt.nodes_per_site, "nodes per site")
      ->capture_default_str();
  cl_init->add_option("--custodians", cl_opt.custodians, "custodians")->capture_default_str();
  cl_init
      ->add_option("--spares", cl_opt.spares,
                   "spare nodes on a site of their own: empty until a repair rebuilds onto them")
      ->capture_default_str();
  cl_init->add_option("--quorum", cl_opt.quorum, "custodian approvals to restore")
      ->capture_default_str();
  cl_init->add_option("--base-port", cl_opt.base_port, "first node's port")->capture_default_str();
  cl_init->footer(
      "Defaults: 3 sites x 2 nodes, k=4 m=2 t=3: losing any site still restores,\n"
      "and one site's shares reveal nothing.");
  PendingArgs pending_args;
  CLI::App* pending = AddPendingCommand(app, pending_args);
  AddNodeArgs add_node_args;
  EnrollRequestArgs enroll_request_args;
  EnrollRunArgs enroll_run_args;
  const EnrollCommands enroll_cmds =
      AddEnrollCommands(*cluster, add_node_args, enroll_request_args, enroll_run_args);
  auto* cl_up =
      cluster->add_subcommand("up", "Start every node in the background, wait for health");
  cl_up->add_option("--dir", cl_dir, "cluster folder")->required();
  auto* cl_down = cluster->add_subcommand("down", "Stop every node (SIGTERM, then SIGKILL)");
  cl_down->add_option("--dir", cl_dir, "cluster folder")->required();

  auto* node = app.add_subcommand("node", "Run a node daemon");
  node->require_subcommand(1);
  std::string node_config;
  auto* node_run = node->add_subcommand("run", "Serve a node until SIGINT/SIGTERM");
  node_run->add_option("--config", node_config, "node file (node.toml)")->required();
  WrapMasterArgs wrap_args;
  CLI::App* wrap_master = AddWrapMasterCommand(*node, wrap_args);

  std::string bench_size = "512MiB";
  bool bench_json = false;
  auto* bench =
      app.add_subcommand("bench", "Measure each stage and the whole pipeline on this machine");
  bench->add_option("--size", bench_size, "artifact size for the pipeline runs")
      ->capture_default_str();
  bench->add_flag("--json", bench_json, "machine-readable output");

  std::string sample_out, sample_size = "64MiB";
  int sample_shards = 3;
  auto* sample =
      app.add_subcommand("sample", "Generate a sample model folder (safetensors shards)");
  sample->add_option("--out", sample_out, "folder to create")->required();
  sample->add_option("--size", sample_size, "bytes of weights")->capture_default_str();
  sample->add_option("--shards", sample_shards, "number of safetensors shards")
      ->capture_default_str();

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
  if (*r_request) return CmdRestoreRequest(rq);
  if (*r_run) return CmdRestoreRun(rr);
  if (*restore) {
    if (r.backup.empty() || r.dest.empty()) {
      std::fprintf(stderr,
                   "qv: usage: qv restore --local DIR --backup ID --dest OUT, or\n"
                   "  qv restore request ... / qv restore run ... (see --help)\n");
      return 2;
    }
    return CmdRestore(r);
  }
  if (*approve) return CmdApprove(ap);
  if (*audit_cmds.verify) return CmdAuditVerify(audit_args);
  if (*audit_cmds.log) return CmdAuditLog(audit_args);
  if (*catalog_cmds.list) return CmdList(catalog.list);
  if (*catalog_cmds.diff) return CmdDiff(catalog.diff);
  if (*catalog_cmds.verify) return CmdVerify(catalog.verify);
  if (*scrub) return CmdScrub(sc);
  if (*catalog_cmds.show) return CmdShow(catalog.show);
  if (*status)
    return CmdStatus(status_cluster, status_key, status_json, ClusterSource(cluster_typed));
  if (*pending) return CmdPending(pending_args);
  if (*cl_init) return CmdClusterInit(cl_dir, cl_opt);
  if (*enroll_cmds.add_node) return CmdAddNode(add_node_args);
  if (*enroll_cmds.request) return CmdEnrollRequest(enroll_request_args);
  if (*enroll_cmds.run) return CmdEnrollRun(enroll_run_args);
  if (*cl_up) return CmdClusterUp(cl_dir);
  if (*cl_down) return CmdClusterDown(cl_dir);
  if (*wrap_master) return CmdWrapMaster(wrap_args);
  if (*node_run) {
    Status st = RunNodeDaemon(node_config);
    return st.ok() ? 0 : Fail(st);
  }
  if (*bench) return CmdBench(bench_size, bench_json);
  if (*sample) return CmdSample(sample_out, sample_size, sample_shards);
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
