#include "cli/backup_cmd.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "base/json.h"
#include "cli/catalog_cmd.h"
#include "cli/cli_util.h"
#include "cli/discovery.h"
#include "coordinator/cluster.h"
#include "coordinator/local_store.h"
#include "coordinator/pipeline.h"
#include "crypto/identity.h"

namespace fs = std::filesystem;

namespace qv {
namespace {

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

}  // namespace

CLI::App* AddBackupCommand(CLI::App& app, BackupArgs& a, const std::vector<std::string>& words) {
  auto* backup = app.add_subcommand("backup", "Back up a model file or folder");
  auto* b_local =
      backup->add_option("--local", a.local, "development layout: one folder per node under DIR");
  auto* b_cluster =
      backup->add_option("--cluster", a.cluster, "cluster file: back up to its nodes");
  b_local->excludes(b_cluster);
  backup->add_option("--key", a.key, "signer's secret key (the coordinator key for --cluster)")
      ->required();
  // The defaults shown are the cluster file's when one is found (what a
  // backup to it would use), else the --local ones.
  const std::optional<ClusterConfig> found = FoundCluster(words);
  auto* b_k = backup->add_option("--k", a.k, "k: data fragments; any k of them rebuild the data");
  auto* b_m = backup->add_option("--m", a.m, "m: parity fragments; up to m nodes may be lost");
  auto* b_t = backup->add_option("--t", a.t,
                                 "t: key shares (one per node) needed to restore; fewer reveal "
                                 "nothing of the key");
  for (auto [o, v] :
       {std::pair{b_k, found ? found->k : a.k}, std::pair{b_m, found ? found->m : a.m},
        std::pair{b_t, found ? found->t : a.t}}) {
    o->default_str(std::to_string(v) + (found ? " (the cluster file's)" : ""));
  }
  backup->add_option("--cipher", a.cipher, "chacha20-poly1305 or aes-256-gcm (FIPS sites)")
      ->capture_default_str();
  backup->add_option("--unit", a.unit, "stripe unit: bytes per fragment per stripe")
      ->capture_default_str();
  backup->add_option("--parent", a.parent,
                     "the backup this one derives from (provenance): id, id prefix, latest or "
                     "latest:NAME");
  backup->add_option("--name", a.name,
                     "the backup's name, e.g. llama-3-8b (default: the model's own name when its "
                     "folder says it, a Hugging Face snapshot's repo id or config.json "
                     "_name_or_path, else the folder's name)");
  // One value per --tag, so `--tag prod ./model` leaves the path a path.
  backup->add_option("--tag", a.tags, "a label such as prod or step-12000 (repeatable)")
      ->allow_extra_args(false);
  backup
      ->add_option("--commit-window", a.commit_window,
                   "how long nodes keep a prepared backup waiting for the commit decision "
                   "before they presume abort (e.g. 90s, 10m, 1h)")
      ->capture_default_str();
  backup->add_flag("--json", a.json, "machine-readable output");
  backup
      ->add_option("paths", a.paths, "files or folders (a model folder: shards, tokenizer, config)")
      ->required()
      ->check(CLI::ExistingPath);
  backup->footer(
      "Prints the backup id on stdout. Example:\n"
      "  qv backup --local vault --key signer.key --k 4 --m 2 --t 3 ./my-model\n" +
      std::string(kConcepts));
  return backup;
}

int CmdBackup(const BackupArgs& a) {
  if (Status s = LocalOrCluster(a.local, a.cluster); !s.ok()) return FailUsage(s);
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

}  // namespace qv
