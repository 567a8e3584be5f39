#include "cli/catalog_cmd.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "base/json.h"
#include "base/text.h"
#include "coordinator/artifact.h"
#include "coordinator/repair.h"
#include "crypto/sha256.h"

namespace qv {

namespace fs = std::filesystem;

namespace {

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// The signed manifest of the backup `text` names (`what`: the argument).
Result<SignedManifest> ManifestNamed(ManifestSource& src, const std::string& text,
                                     const char* what) {
  auto id = ResolveBackup(text, src);
  if (!id.ok()) return id.status().WithContext(what);
  std::vector<std::string> problems;
  return src.Get(*id, &problems);
}

void AddSource(CLI::App* c, CatalogSource& w) {
  c->add_option("--local", w.local, "development layout folder");
  c->add_option("--cluster", w.cluster, "cluster file (or the folder qv cluster init made)");
  c->add_option("--key", w.key, "coordinator key (default: beside the cluster file)");
}

}  // namespace

Result<std::vector<ClusterSession::Listed>> ManifestSource::List() {
  if (!store) return cluster.session->List();
  std::vector<ClusterSession::Listed> out;
  for (const auto& id : store->ListBackups()) out.push_back({id, 1, 0});
  return out;
}

Result<SignedManifest> ManifestSource::Get(const BackupId& id, std::vector<std::string>* problems) {
  if (store) return store->LoadManifest(id, nullptr, problems);
  return cluster.session->Manifest(id, problems);
}

Result<ManifestSource> OpenManifests(const CatalogSource& where) {
  QV_RETURN_IF_ERROR(LocalOrCluster(where.local, where.cluster));
  ManifestSource m;
  if (!where.cluster.empty()) {
    QV_ASSIGN_OR_RETURN(m.cluster, OpenCluster(where.cluster, where.key));
    return m;
  }
  if (!fs::is_directory(where.local)) return NotFound(where.local + ": no such folder");
  QV_ASSIGN_OR_RETURN(m.store, LocalStore::Open(where.local));
  return m;
}

Result<BackupId> ResolveBackup(const std::string& text, const std::vector<BackupId>& ids,
                               const std::function<Result<SignedManifest>(const BackupId&)>& get) {
  if (text.size() == 32) return BackupIdFromText(text);
  if (text == "latest" || text.rfind("latest:", 0) == 0) {
    const std::string name = text == "latest" ? "" : text.substr(7);
    // The newest by creation time (whole seconds); among backups made in
    // the same second, one that another names as its parent is older.
    std::vector<std::pair<BackupId, std::string>> newest;  // id, its parent
    int64_t best_time = 0;
    for (const auto& id : ids) {
      auto sm = get(id);
      if (!sm.ok()) continue;
      const Manifest& m = sm->manifest();
      if (!name.empty() && m.artifact_name != name) continue;
      if (newest.empty() || m.created_unix > best_time) newest.clear();
      if (newest.empty() || m.created_unix == best_time) {
        newest.push_back({id, m.provenance.parent_backup});
        best_time = m.created_unix;
      }
    }
    if (newest.empty()) {
      return NotFound(name.empty() ? "no backups to call latest"
                                   : "no backup is named " + Printable(name));
    }
    std::vector<BackupId> leaves;
    for (const auto& [id, parent] : newest) {
      const std::string text = BackupIdToText(id);
      if (std::none_of(newest.begin(), newest.end(),
                       [&](const auto& o) { return o.second == text; })) {
        leaves.push_back(id);
      }
    }
    if (leaves.size() != 1) {
      std::string which;
      for (const auto& [id, parent] : newest) which += " " + BackupIdToText(id);
      return InvalidArgument("several backups were made in the same second; name one:" + which);
    }
    return leaves[0];
  }
  if (text.size() < 4 || text.size() > 32 || !IsHex(text)) {
    return InvalidArgument("'" + Printable(text) +
                           "' is not a backup: give its id, 4 or more of its first hex digits, "
                           "latest, or latest:NAME");
  }
  std::string lower = text;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::vector<BackupId> found;
  for (const auto& id : ids) {
    if (BackupIdToText(id).rfind(lower, 0) == 0) found.push_back(id);
  }
  if (found.empty()) return NotFound("no backup id starts with " + lower);
  if (found.size() > 1) {
    std::string which;
    for (const auto& id : found) which += " " + BackupIdToText(id);
    return InvalidArgument(lower + " names " + std::to_string(found.size()) +
                           " backups; give more digits:" + which);
  }
  return found[0];
}

Result<BackupId> ResolveBackup(const std::string& text, ManifestSource& source) {
  if (source.store == nullptr) return ResolveBackup(text, *source.cluster.session);
  if (text.size() == 32) return BackupIdFromText(text);
  return ResolveBackup(text, source.store->ListBackups(), [&](const BackupId& id) {
    std::vector<std::string> ignored;
    return source.Get(id, &ignored);
  });
}

Result<BackupId> ResolveBackup(const std::string& text, ClusterSession& session) {
  if (text.size() == 32) return BackupIdFromText(text);
  QV_ASSIGN_OR_RETURN(auto listed, session.List());
  std::vector<BackupId> ids;
  for (const auto& l : listed) ids.push_back(l.id);
  return ResolveBackup(text, ids, [&](const BackupId& id) {
    std::vector<std::string> ignored;
    return session.Manifest(id, &ignored);
  });
}

CatalogCommands AddCatalogCommands(CLI::App& app, CatalogArgs& a) {
  CatalogCommands c{};
  c.list = app.add_subcommand("list", "List backups, oldest first (local layout or cluster)");
  AddSource(c.list, a.list.src);
  c.list->add_option("--name", a.list.name, "only backups of this name");
  c.list->add_option("--tag", a.list.tag, "only backups with this tag");
  c.list->add_option("--since", a.list.since,
                     "only backups made in the last DURATION (30m, 12h, 7d) or since a time "
                     "(2026-12-01 or 2026-12-01T13:38:43Z)");
  c.list->add_flag("--json", a.list.json, "machine-readable output");
  c.list->footer(
      "Columns: id, name, tags, size, files, created (UTC), parent. A backup is named anywhere\n"
      "one is asked for by its id, 4 or more of its first hex digits, latest, or latest:NAME.");

  c.show = app.add_subcommand("show", "Show a backup's signed manifest");
  AddSource(c.show, a.show.src);
  c.show->add_option("--backup", a.show.backup, "backup: id, id prefix, latest or latest:NAME")
      ->required();
  c.show->add_flag("--json", a.show.json, "machine-readable output");

  c.diff = app.add_subcommand("diff", "Files added, removed and changed between two backups");
  AddSource(c.diff, a.diff.src);
  c.diff->add_option("A", a.diff.a, "older backup (id, prefix, latest, latest:NAME)")->required();
  c.diff->add_option("B", a.diff.b, "newer backup")->required();
  c.diff->add_flag("--json", a.diff.json, "machine-readable output");
  c.diff->footer(
      "Compares the signed per-file SHA-256 digests of the two manifests; no quorum, no key\n"
      "and no fragment is needed. Lines: + added, - removed, M changed.");

  c.verify = app.add_subcommand(
      "verify", "Check a deployed or copied model folder against a backup's signed digests");
  AddSource(c.verify, a.verify.src);
  c.verify->add_option("--backup", a.verify.backup, "backup: id, id prefix, latest or latest:NAME")
      ->required();
  c.verify->add_option("PATH", a.verify.path, "the folder (or file) to check")->required();
  c.verify->add_flag("--json", a.verify.json, "machine-readable output");
  c.verify->footer(
      "Hashes every file under PATH and compares it with the SHA-256 the backup's signed\n"
      "manifest records for the same relative path; names each file that differs, is missing\n"
      "or is extra. No quorum is needed. Exit 0 only when PATH matches the backup exactly.");
  return c;
}

int CmdList(const ListArgs& a) {
  int64_t since = 0;
  if (!a.since.empty()) {
    auto when = ParseTimeOrAge(a.since, static_cast<int64_t>(std::time(nullptr)));
    if (!when.ok()) return Fail(when.status().WithContext("--since"));
    since = *when;
  }
  if (Status usage = LocalOrCluster(a.src.local, a.src.cluster); !usage.ok())
    return FailUsage(usage);
  auto src = OpenManifests(a.src);
  if (!src.ok()) return Fail(src.status());
  auto ids = src->List();
  if (!ids.ok()) return Fail(ids.status());
  struct Row {
    ClusterSession::Listed listed;
    std::optional<SignedManifest> sm;
  };
  std::vector<Row> rows;
  for (const auto& listed : *ids) {
    std::vector<std::string> problems;
    auto sm = src->Get(listed.id, &problems);
    rows.push_back({listed, sm.ok() ? std::optional<SignedManifest>(*sm) : std::nullopt});
  }
  // Oldest first, as restic and borg list; unreadable ones last.
  std::stable_sort(rows.begin(), rows.end(), [](const Row& x, const Row& y) {
    const int64_t tx = x.sm ? x.sm->manifest().created_unix : INT64_MAX;
    const int64_t ty = y.sm ? y.sm->manifest().created_unix : INT64_MAX;
    return tx < ty;
  });
  JsonWriter j;
  j.BeginArray();
  if (!a.json) {
    std::printf("%-32s  %-24s %-20s %10s %6s  %-20s  %s\n", "ID", "NAME", "TAGS", "SIZE", "FILES",
                "CREATED", "PARENT");
  }
  size_t shown = 0;
  for (const auto& row : rows) {
    const BackupId& id = row.listed.id;
    if (!row.sm) {
      if (!a.json && a.name.empty() && a.tag.empty() && since == 0) {
        std::printf("%s  (no valid manifest)\n", BackupIdToText(id).c_str());
      }
      continue;
    }
    const Manifest& m = row.sm->manifest();
    if (!a.name.empty() && m.artifact_name != a.name) continue;
    if (!a.tag.empty() && std::find(m.tags.begin(), m.tags.end(), a.tag) == m.tags.end()) continue;
    if (m.created_unix < since) continue;
    ++shown;
    const std::string parent =
        m.provenance.parent_backup.empty() ? "-" : m.provenance.parent_backup.substr(0, 12);
    if (a.json) {
      j.BeginObject()
          .Field("backup_id", BackupIdToText(id))
          .Field("name", m.artifact_name)
          .Field("artifact", m.artifact_name)
          .Field("bytes", m.plaintext_size)
          .Field("files", uint64_t{m.files.size()})
          .Field("created", Rfc3339(m.created_unix))
          .Field("parent", m.provenance.parent_backup)
          .Field("nodes_published", uint64_t{row.listed.published})
          .Field("nodes_committing", uint64_t{row.listed.committing});
      j.Key("tags").BeginArray();
      for (const auto& t : m.tags) j.String(t);
      j.EndArray().EndObject();
      continue;
    }
    // Published on some nodes, still prepared on others: the commit is
    // spreading (the nodes settle it), and the listing says so.
    const std::string flag =
        row.listed.committing == 0
            ? ""
            : "  (committing: published on " + std::to_string(row.listed.published) + " of " +
                  std::to_string(row.listed.published + row.listed.committing) + " nodes)";
    const std::string tags = m.tags.empty() ? "-" : Join(m.tags, ",");
    std::printf("%s  %-24s %-20s %10s %6zu  %-20s  %s%s\n", BackupIdToText(id).c_str(),
                Shown(m.artifact_name).c_str(), Shown(tags).c_str(),
                FormatBytes(m.plaintext_size).c_str(), m.files.size(),
                Rfc3339(m.created_unix).c_str(), Shown(parent).c_str(), flag.c_str());
  }
  j.EndArray();
  if (a.json) {
    std::printf("%s\n", j.str().c_str());
  } else if (shown == 0) {
    std::printf("(no backups%s)\n",
                a.name.empty() && a.tag.empty() && since == 0 ? "" : " match the filters");
  }
  return 0;
}

int CmdShow(const ShowArgs& a) {
  const bool json = a.json;
  const std::string& cluster = a.src.cluster;
  const std::string& key = a.src.key;
  if (Status usage = LocalOrCluster(a.src.local, a.src.cluster); !usage.ok())
    return FailUsage(usage);
  auto src = OpenManifests(a.src);
  if (!src.ok()) return Fail(src.status());
  auto sm = ManifestNamed(*src, a.backup, "--backup");
  if (!sm.ok()) return Fail(sm.status());
  const BackupId* id = &sm->manifest().backup_id;
  const Manifest& m = sm->manifest();
  if (json) {
    JsonWriter j;
    j.BeginObject()
        .Field("backup_id", BackupIdToText(m.backup_id))
        .Field("artifact", m.artifact_name)
        .Field("bytes", m.plaintext_size)
        .Field("cipher", CipherSuiteName(m.cipher))
        .Field("k", uint64_t{m.k})
        .Field("m", uint64_t{m.m})
        .Field("t", uint64_t{m.t})
        .Field("unit_size", uint64_t{m.unit_size})
        .Field("stripes", m.stripe_count)
        .Field("signer", PublicKeyToText(sm->signer()))
        .Field("manifest_sha256", HexEncode(sm->Hash()))
        .Field("source_path", m.provenance.source_path)
        .Field("parent_backup", m.provenance.parent_backup)
        .Field("revision", uint64_t{m.revision})
        .Field("previous_sha256", m.revision == 0 ? std::string() : HexEncode(m.previous))
        .Field("created", Rfc3339(m.created_unix));
    j.Key("tags").BeginArray();
    for (const auto& t : m.tags) j.String(t);
    j.EndArray().Key("policy").BeginObject().Field("quorum", uint64_t{m.policy.quorum});
    j.Field("max_request_seconds", uint64_t{m.policy.max_request_seconds});
    j.Key("custodians").BeginArray();
    for (const auto& c : m.policy.custodians) j.String(c.id);
    j.EndArray().EndObject();
    j.Key("files").BeginArray();
    for (const auto& f : m.files) {
      j.BeginObject()
          .Field("path", f.path)
          .Field("size", f.size)
          .Field("sha256", HexEncode(f.sha256));
      if (f.mtime_unix != 0) j.Field("modified", Rfc3339(f.mtime_unix));
      j.EndObject();
    }
    j.EndArray().Key("placement").BeginArray();
    for (const auto& p : m.placement) {
      j.BeginObject()
          .Field("fragment", uint64_t{p.fragment})
          .Field("node", p.node_id)
          .Field("site", p.site)
          .EndObject();
    }
    j.EndArray().EndObject();
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  std::printf("backup    %s\nartifact  %s (%s, %zu files)\n", BackupIdToText(m.backup_id).c_str(),
              Shown(m.artifact_name).c_str(), FormatBytes(m.plaintext_size).c_str(),
              m.files.size());
  std::printf("cipher    %s, %llu stripes of %u x %s units\n",
              std::string(CipherSuiteName(m.cipher)).c_str(),
              static_cast<unsigned long long>(m.stripe_count), m.k,
              FormatBytes(m.unit_size).c_str());
  std::printf("coding    k=%u data + m=%u parity, key threshold t=%u of %u\n", m.k, m.m, m.t,
              m.n());
  std::printf(
      "created   %s\nparent    %s\ntags      %s\n", Rfc3339(m.created_unix).c_str(),
      m.provenance.parent_backup.empty() ? "(none)" : Shown(m.provenance.parent_backup).c_str(),
      m.tags.empty() ? "(none)" : Shown(Join(m.tags, " ")).c_str());
  if (m.policy.custodial()) {
    std::vector<std::string> ids;
    for (const auto& c : m.policy.custodians) ids.push_back(c.id);
    std::printf("policy    %u of %zu custodians (%s) approve; requests live at most %s\n",
                m.policy.quorum, ids.size(), Shown(Join(ids, ", ")).c_str(),
                FormatSeconds(m.policy.max_request_seconds).c_str());
  } else {
    std::printf("policy    none (a local, uncustodied backup)\n");
  }
  std::printf("signer    %s\nmanifest  sha256:%s\nsource    %s\n",
              PublicKeyToText(sm->signer()).c_str(), HexEncode(sm->Hash()).c_str(),
              Shown(m.provenance.source_path).c_str());
  for (const auto& f : m.files) {
    std::printf("  %s  %12s  %s\n", HexEncode(f.sha256).c_str(), FormatBytes(f.size).c_str(),
                Shown(f.path).c_str());
  }
  for (const auto& p : m.placement) {
    std::printf("  fragment %u, share %u -> %s (%s)\n", p.fragment, p.fragment + 1,
                Shown(p.node_id).c_str(), Shown(p.site).c_str());
  }
  std::printf("revision  %u%s\n", m.revision,
              m.revision == 0 ? " (as backed up)"
                              : (" (previous sha256:" + HexEncode(m.previous) + ")").c_str());
  if (cluster.empty() || m.revision == 0) return 0;
  // Each repair's placement change, as the nodes' history keeps it.
  auto ctx = OpenCluster(cluster, key);
  auto history = ctx.ok() ? ManifestHistory(*ctx->session, *id)
                          : Result<std::vector<SignedManifest>>(ctx.status());
  if (!history.ok()) {
    Warn("history: " + history.status().message());
    return 0;
  }
  for (size_t i = 0; i + 1 < history->size(); ++i) {
    const Manifest& newer = (*history)[i].manifest();
    const Manifest& older = (*history)[i + 1].manifest();
    std::string moves;
    for (size_t f = 0; f < newer.placement.size() && f < older.placement.size(); ++f) {
      if (newer.placement[f].node_id != older.placement[f].node_id) {
        moves += (moves.empty() ? "" : ", ") + std::string("fragment ") + std::to_string(f) + " " +
                 older.placement[f].node_id + " -> " + newer.placement[f].node_id;
      }
    }
    std::printf("  revision %u: %s\n", newer.revision, Shown(moves).c_str());
  }
  if (history->back().manifest().revision > 0) {
    std::printf("  (older revisions are not kept on the nodes that answered)\n");
  }
  return 0;
}

int CmdDiff(const DiffArgs& a) {
  if (Status usage = LocalOrCluster(a.src.local, a.src.cluster); !usage.ok())
    return FailUsage(usage);
  auto src = OpenManifests(a.src);
  if (!src.ok()) return Fail(src.status());
  auto ma = ManifestNamed(*src, a.a, "A");
  if (!ma.ok()) return Fail(ma.status());
  auto mb = ManifestNamed(*src, a.b, "B");
  if (!mb.ok()) return Fail(mb.status());
  const BackupId* ia = &ma->manifest().backup_id;
  const BackupId* ib = &mb->manifest().backup_id;
  std::map<std::string, const FileEntry*> before, after;
  for (const auto& f : ma->manifest().files) before[f.path] = &f;
  for (const auto& f : mb->manifest().files) after[f.path] = &f;
  JsonWriter j;
  j.BeginObject().Field("a", BackupIdToText(*ia)).Field("b", BackupIdToText(*ib));
  std::vector<std::pair<char, const FileEntry*>> lines;
  for (const auto& [path, f] : before) {
    auto it = after.find(path);
    if (it == after.end()) {
      lines.push_back({'-', f});
    } else if (it->second->sha256 != f->sha256 || it->second->size != f->size) {
      lines.push_back({'M', it->second});
    }
  }
  for (const auto& [path, f] : after) {
    if (!before.count(path)) lines.push_back({'+', f});
  }
  std::sort(lines.begin(), lines.end(),
            [](const auto& x, const auto& y) { return x.second->path < y.second->path; });
  size_t added = 0, removed = 0, changed = 0;
  for (const char kind : {'+', '-', 'M'}) {
    const char* key = kind == '+' ? "added" : kind == '-' ? "removed" : "changed";
    j.Key(key).BeginArray();
    for (const auto& [k, f] : lines) {
      if (k == kind) j.String(f->path);
    }
    j.EndArray();
  }
  for (const auto& [k, f] : lines) {
    (k == '+' ? added : k == '-' ? removed : changed) += 1;
    if (!a.json) {
      std::printf("%c %s  %s\n", k, Shown(f->path).c_str(), FormatBytes(f->size).c_str());
    }
  }
  j.EndObject();
  if (a.json) {
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("%zu added, %zu removed, %zu changed (%s -> %s)\n", added, removed, changed,
                BackupIdToText(*ia).substr(0, 12).c_str(),
                BackupIdToText(*ib).substr(0, 12).c_str());
  }
  return 0;
}

int CmdVerify(const VerifyArgs& a) {
  if (Status usage = LocalOrCluster(a.src.local, a.src.cluster); !usage.ok())
    return FailUsage(usage);
  auto src = OpenManifests(a.src);
  if (!src.ok()) return Fail(src.status());
  auto sm = ManifestNamed(*src, a.backup, "--backup");
  if (!sm.ok()) return Fail(sm.status());
  const BackupId* id = &sm->manifest().backup_id;
  auto scanned = ScanPaths({fs::path(a.path)});
  if (!scanned.ok()) return Fail(scanned.status());
  std::map<std::string, const FileEntry*> signed_files;
  for (const auto& f : sm->manifest().files) signed_files[f.path] = &f;
  Progress progress("verify", !a.json);
  ProgressFn report = progress.fn();
  const uint64_t total = scanned->TotalSize();
  uint64_t done = 0;
  std::vector<std::pair<std::string, std::string>> findings;  // path, what
  size_t matched = 0;
  std::vector<uint8_t> buf(1 << 20);
  for (const auto& f : scanned->files) {
    auto it = signed_files.find(f.path);
    if (it == signed_files.end()) {
      findings.push_back({f.path, "extra"});
      done += f.size;
      continue;
    }
    const FileEntry& want = *it->second;
    signed_files.erase(it);
    auto reader = f.open();
    if (!reader.ok()) return Fail(reader.status());
    Sha256 h;
    uint64_t size = 0;
    for (;;) {
      auto n = (*reader)->Read(MutableByteSpan(buf.data(), buf.size()));
      if (!n.ok()) return Fail(n.status().WithContext(f.path));
      if (*n == 0) break;
      h.Update(ByteSpan(buf.data(), *n));
      size += *n;
      done += *n;
      if (report) report(done, total);
    }
    if (size != want.size || h.Finish() != want.sha256) {
      findings.push_back({f.path, "differs"});
    } else {
      ++matched;
    }
  }
  for (const auto& [path, f] : signed_files) findings.push_back({path, "missing"});
  std::sort(findings.begin(), findings.end());
  progress.Clear();
  if (a.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("backup_id", BackupIdToText(*id))
        .Field("matched", uint64_t{matched})
        .Field("ok", findings.empty());
    for (const char* kind : {"differs", "missing", "extra"}) {
      j.Key(kind).BeginArray();
      for (const auto& [path, what] : findings) {
        if (what == kind) j.String(path);
      }
      j.EndArray();
    }
    j.EndObject();
    std::printf("%s\n", j.str().c_str());
  } else {
    for (const auto& [path, what] : findings) {
      std::printf("%-8s %s\n", what.c_str(), Shown(path).c_str());
    }
    std::printf(
        "%s: %zu file(s) match backup %s%s\n", findings.empty() ? "verified" : "MISMATCH", matched,
        BackupIdToText(*id).substr(0, 12).c_str(),
        findings.empty() ? "" : (", " + std::to_string(findings.size()) + " do not").c_str());
  }
  return findings.empty() ? 0 : 1;
}

}  // namespace qv
