#include "cli/health_cmd.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "base/json.h"
#include "cli/catalog_cmd.h"
#include "cli/cli_util.h"
#include "coordinator/scrub.h"

namespace qv {

CLI::App* AddStatusCommand(CLI::App& app, StatusArgs& a) {
  auto* status = app.add_subcommand("status", "Health of every node; exit 1 if any is unreachable");
  status->add_option("--cluster", a.cluster, "cluster file")->required();
  status->add_option("--key", a.key, "coordinator key (default: beside the cluster file)");
  status->add_flag("--json", a.json, "machine-readable output");
  return status;
}

CLI::App* AddScrubCommand(CLI::App& app, ScrubArgs& sc) {
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
  return scrub;
}

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

int CmdStatus(const StatusArgs& a, const std::string& source) {
  const std::string& cluster = a.cluster;
  const bool json = a.json;
  auto ctx = OpenCluster(cluster, a.key);
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
                                   KeyBeside(cluster, a.key, "coordinator.key") +
                                   "): use a key listed in " + cluster));
    }
    std::fprintf(stderr, "qv: error: %d of %zu nodes unhealthy or unreachable\n", down,
                 health.size());
    return 1;
  }
  return 0;
}

}  // namespace qv
