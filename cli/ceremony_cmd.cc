#include "cli/ceremony_cmd.h"

#include <csignal>
#include <cstdio>
#include <ctime>
#include <set>
#include <thread>

#include "base/json.h"
#include "cli/cli_util.h"
#include "coordinator/ceremony.h"

namespace qv {

namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnStop(int) { g_stop = 1; }

// "c1, c2" of the approvals (or denials) that verify under `policy`.
std::vector<std::string> Voters(const PendingView& v, const Policy* policy, bool approve) {
  std::vector<std::string> out;
  for (const auto& a : v.approvals) {
    if (a.approve != approve) continue;
    if (policy != nullptr && policy->FindByKey(a.custodian_key) == nullptr) continue;
    out.push_back(a.custodian_id);
  }
  return out;
}

// A rough duration for people: "45s", "12m", "5h", "3d".
std::string Roughly(int64_t s) {
  s = std::max<int64_t>(0, s);
  if (s < 120) return std::to_string(s) + "s";
  if (s < 2 * 3600) return std::to_string(s / 60) + "m";
  if (s < 2 * 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + Printable(s);
  return out;
}

void PrintPending(const PendingView& v, const Policy* policy, int64_t now) {
  const QuorumRequest& q = v.request.request();
  const auto approved = Voters(v, policy, true);
  const auto denied = Voters(v, policy, false);
  std::printf("%s  %s %s (%s)\n", RequestIdToText(v.request.id()).substr(0, 16).c_str(),
              Shown(q.operation).c_str(), BackupIdToText(q.backup_id).c_str(),
              Shown(q.backup_name).c_str());
  std::printf("    requester:   %s\n    purpose:     %s\n    destination: %s\n",
              Shown(q.requester_id).c_str(), Shown(q.purpose).c_str(),
              q.destination.empty() ? "(none given)" : Shown(q.destination).c_str());
  std::printf("    age:         %s    expires in %s (%s)\n", Roughly(now - q.created_unix).c_str(),
              Roughly(q.expires_unix - now).c_str(), Rfc3339(q.expires_unix).c_str());
  std::printf("    approvals:   %zu of %s%s%s\n", approved.size(),
              policy != nullptr ? std::to_string(policy->quorum).c_str() : "?",
              approved.empty() ? "" : (": " + Join(approved)).c_str(),
              denied.empty() ? "" : ("    DENIED by " + Join(denied)).c_str());
}

}  // namespace

CLI::App* AddPendingCommand(CLI::App& app, PendingArgs& a) {
  auto* p = app.add_subcommand("pending", "List restore requests waiting for custodians");
  p->add_option("--cluster", a.cluster, "cluster file")->required();
  p->add_option("--key", a.key,
                "your key: a custodian sees what it may approve; a requester sees all "
                "(default: operator.key beside the cluster file)");
  p->add_flag("--json", a.json, "machine-readable output");
  p->add_flag("--watch", a.watch, "keep running; print requests as they arrive (Ctrl-C stops)");
  p->add_option("--interval", a.interval_s, "seconds between polls with --watch")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  p->footer(
      "A requester submits with  qv restore request ... --submit ; each custodian lists with\n"
      "qv pending and approves with  qv approve --cluster FILE --key KEY --request ID ; the\n"
      "requester restores with  qv restore run --cluster FILE --request REQ --dest OUT  (no\n"
      "approval files: the nodes' are collected). Nodes verify every request and vote.");
  return p;
}

int CmdPending(const PendingArgs& a) {
  auto ctx = OpenCluster(a.cluster, a.key, "operator.key");
  if (!ctx.ok()) return Fail(ctx.status());
  ClusterSession& session = *ctx->session;
  if (session.reachable() == 0) {
    return Fail(IoError("no node reachable: " + Join(session.problems())));
  }
  std::signal(SIGINT, OnStop);
  std::signal(SIGTERM, OnStop);
  std::set<RequestId> seen;
  std::map<BackupId, std::optional<SignedManifest>> manifests;
  bool first = true;
  do {
    std::vector<std::string> problems;
    auto listed = ListPending(session, nullptr, &problems);
    // Once: a watch rides out nodes that come and go.
    if (!listed.ok() && first) return Fail(listed.status());
    const std::vector<PendingView> list =
        listed.ok() ? std::move(listed).value() : std::vector<PendingView>{};
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    if (first) {
      for (const auto& p : problems) Warn(p);
      for (const auto& p : session.problems()) Warn(p);
    }
    if (a.json && first) std::printf("[");
    bool printed = false;
    for (const auto& v : list) {
      if (!seen.insert(v.request.id()).second) continue;
      const BackupId b = v.request.request().backup_id;
      if (!manifests.count(b)) {
        std::vector<std::string> ignored;
        auto sm = session.Manifest(b, &ignored);
        manifests[b] = sm.ok() ? std::optional<SignedManifest>(*sm) : std::nullopt;
      }
      const Policy* policy = manifests[b] ? &manifests[b]->manifest().policy : nullptr;
      if (a.json) {
        const QuorumRequest& q = v.request.request();
        JsonWriter j;
        j.BeginObject()
            .Field("request_id", RequestIdToText(v.request.id()))
            .Field("operation", q.operation)
            .Field("backup_id", BackupIdToText(b))
            .Field("backup_name", q.backup_name)
            .Field("requester", q.requester_id)
            .Field("purpose", q.purpose)
            .Field("destination", q.destination)
            .Field("created", Rfc3339(q.created_unix))
            .Field("expires", Rfc3339(q.expires_unix))
            .Field("quorum", policy != nullptr ? uint64_t{policy->quorum} : 0)
            .Field("nodes", uint64_t{v.nodes});
        j.Key("approved_by").BeginArray();
        for (const auto& s : Voters(v, policy, true)) j.String(s);
        j.EndArray().Key("denied_by").BeginArray();
        for (const auto& s : Voters(v, policy, false)) j.String(s);
        j.EndArray().EndObject();
        std::printf("%s%s", printed || !first ? ",\n" : "\n", j.str().c_str());
      } else {
        PrintPending(v, policy, now);
      }
      printed = true;
    }
    if (a.json && first && !a.watch) std::printf("%s]\n", printed ? "\n" : "");
    if (!a.json && first && !printed) std::printf("no pending requests\n");
    std::fflush(stdout);
    first = false;
    for (uint32_t i = 0; a.watch && i < a.interval_s * 10 && !g_stop; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  } while (a.watch && !g_stop);
  if (a.json && a.watch) std::printf("\n]\n");
  return 0;
}

Result<FetchedRequest> FetchRequest(ClusterSession& session, const std::string& id_text) {
  std::vector<std::string> problems;
  std::vector<PendingView> found;
  QV_ASSIGN_OR_RETURN(std::vector<PendingView> pending, ListPending(session, nullptr, &problems));
  for (auto& v : pending) {
    const std::string id = RequestIdToText(v.request.id());
    if (id_text.size() >= 8 && id.compare(0, id_text.size(), id_text) == 0) {
      found.push_back(std::move(v));
    }
  }
  if (found.empty()) {
    std::string why = "no reachable node keeps a pending request " + Printable(id_text);
    if (id_text.size() < 8) why += " (give at least 8 characters of its id)";
    for (const auto& p : problems) why += "; " + p;
    return NotFound(why);
  }
  if (found.size() > 1) return InvalidArgument(Printable(id_text) + " names several requests");
  const QuorumRequest& q = found[0].request.request();
  QV_ASSIGN_OR_RETURN(SignedManifest sm, session.Manifest(q.backup_id, &problems));
  if (sm.Hash() != q.manifest_hash) {
    return PermissionDenied("the nodes' manifest of backup " + BackupIdToText(q.backup_id) +
                            " is not the one the request names");
  }
  return FetchedRequest{Certificate{found[0].request, found[0].approvals}, std::move(sm)};
}

}  // namespace qv
