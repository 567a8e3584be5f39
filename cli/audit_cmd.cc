#include "cli/audit_cmd.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "base/json.h"
#include "base/text.h"
#include "cli/cli_util.h"
#include "coordinator/audit_check.h"

namespace qv {

AuditCommands AddAuditCommands(CLI::App& app, AuditArgs& a) {
  auto* audit = app.add_subcommand("audit", "Check and read the nodes' tamper-evident audit logs");
  audit->require_subcommand(1);
  AuditCommands c{};
  c.verify = audit->add_subcommand(
      "verify", "Check every node's hash chain, checkpoints, witnesses and releases");
  c.log = audit->add_subcommand("log", "Show who requested, approved and released");
  for (auto* s : {c.verify, c.log}) {
    s->add_option("--cluster", a.cluster, "cluster file")->required();
    s->add_option("--key", a.key, "identity (default: operator.key beside the cluster file)");
    s->add_flag("--json", a.json, "machine-readable output");
  }
  c.log->add_option("--backup", a.backup, "only this backup's trail (its id or 4+ hex digits)");
  c.log->add_option("--request", a.request, "only this request's trail (4 or more hex digits)");
  c.log->add_option("--since", a.since,
                    "only events in the last DURATION (2h, 7d) or since a time");
  c.log->add_option("--last", a.last, "only the last N events")->check(CLI::Range(1, 1000000));
  c.log->footer(
      "One line per event across the cluster: its earliest time, the event, the nodes that\n"
      "recorded it (node-00,01,02), the actor (the custodian for an approval), the request and\n"
      "what happened. Nodes that recorded different things for the same approval are flagged\n"
      "NODES DISAGREE. Times are UTC (RFC 3339). qv audit verify checks the logs themselves.");
  return c;
}

int CmdAuditVerify(const AuditArgs& a) {
  const bool json = a.json;
  auto ctx = OpenCluster(a.cluster, a.key, "operator.key");
  if (!ctx.ok()) return Fail(ctx.status());
  AuditReport r = CheckClusterAudit(*ctx->session);
  if (json) {
    JsonWriter j;
    j.BeginObject().Field("ok", r.ok()).Key("nodes").BeginArray();
    for (const auto& n : r.nodes) {
      j.BeginObject()
          .Field("node", n.node)
          .Field("reachable", n.reachable)
          .Field("entries", uint64_t{n.entries.size()})
          .Field("checkpoints", uint64_t{n.checkpoints.size()})
          .Key("problems")
          .BeginArray();
      for (const auto& p : n.problems) j.String(p);
      j.EndArray().EndObject();
    }
    j.EndArray().Key("cross_node").BeginArray();
    for (const auto& p : r.cross_problems) j.String(p);
    j.EndArray()
        .Field("witness_records_checked", uint64_t{r.witness_records_checked})
        .Field("releases", uint64_t{r.releases})
        .EndObject();
    std::printf("%s\n", j.str().c_str());
    return r.ok() ? 0 : 1;
  }
  for (const auto& n : r.nodes) {
    if (n.problems.empty()) {
      std::printf("%-10s chain intact: %zu entries, %zu signed checkpoints valid\n",
                  Shown(n.node).c_str(), n.entries.size(), n.checkpoints.size());
    }
    for (const auto& p : n.problems)
      std::printf("%-10s TAMPERED OR MISSING: %s\n", Shown(n.node).c_str(), Shown(p).c_str());
  }
  for (const auto& p : r.cross_problems) std::printf("cross-node: %s\n", Shown(p).c_str());
  std::printf("%zu witness records checked; %zu released requests consistent across nodes\n%s\n",
              r.witness_records_checked, r.releases, r.ok() ? "audit verified" : "AUDIT FAILED");
  return r.ok() ? 0 : 1;
}

namespace {

// One event as the cluster recorded it: the same kind, request, backup,
// actor and detail on each node that has it.
struct Line {
  int64_t time = 0;  // the earliest any node recorded it
  std::string kind, actor, backup, request, text;
  std::vector<std::string> nodes;
  const AuditEvent* event = nullptr;  // one node's copy (for --json fields)
  bool disagree = false;
};

// "node-00,01,05" for node-00, node-01, node-05: the shared prefix once.
std::string NodeList(std::vector<std::string> nodes) {
  std::sort(nodes.begin(), nodes.end());
  std::string out;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::string& n = nodes[i];
    const size_t dash = n.rfind('-');
    if (i > 0 && dash != std::string::npos && n.compare(0, dash, nodes[0], 0, dash) == 0 &&
        nodes[0].rfind('-') == dash) {
      out += "," + n.substr(dash + 1);
    } else {
      out += (i ? "," : "") + n;
    }
  }
  return out;
}

// What a person reads for `e`: approvals and requests from their fields
// (with readable times), anything else as the node wrote it.
std::string Describe(const AuditEvent& e) {
  auto get = [&](std::string_view k) { return e.Get(k).value_or(""); };
  auto when = [&](std::string_view k) {
    const std::string v = get(k);
    char* end = nullptr;
    const long long t = std::strtoll(v.c_str(), &end, 10);
    return v.empty() || *end != '\0' ? v : Rfc3339(t);
  };
  if (e.kind == "approval" && e.Get("custodian")) {
    std::string s = get("decision") == "deny" ? "denied" : "approved";
    s += get("result") == "valid" ? "" : " (REFUSED: " + get("result") + ")";
    s += ", signed " + when("signed");
    if (!get("note").empty()) s += ", note \"" + get("note") + "\"";
    return s;
  }
  if (e.kind == "request" && e.Get("expires")) {
    return "by " + get("requester") + " for \"" + get("purpose") + "\"" +
           (get("destination").empty() ? "" : " to " + get("destination")) + ", expires " +
           when("expires");
  }
  if (e.kind == "request-submitted" && e.Get("expires")) {
    return e.detail + ", expires " + when("expires");
  }
  return e.detail;
}

}  // namespace

int CmdAuditLog(const AuditArgs& a) {
  int64_t since = 0;
  if (!a.since.empty()) {
    auto t = ParseTimeOrAge(a.since, static_cast<int64_t>(std::time(nullptr)));
    if (!t.ok()) return Fail(t.status().WithContext("--since"));
    since = *t;
  }
  if (!a.request.empty() && (a.request.size() < 4 || a.request.size() > 64)) {
    return Fail(InvalidArgument("--request: give 4 or more hex digits of the request id"));
  }
  if (!a.backup.empty() && (a.backup.size() < 4 || a.backup.size() > 32)) {
    return Fail(InvalidArgument("--backup: give 4 or more hex digits of the backup id"));
  }
  auto ctx = OpenCluster(a.cluster, a.key, "operator.key");
  if (!ctx.ok()) return Fail(ctx.status());
  AuditReport r = CheckClusterAudit(*ctx->session);
  // Group the nodes' copies of one event; then flag approvals the nodes
  // judged differently (same request and custodian, other outcomes).
  std::map<std::string, Line> lines;
  for (const auto& n : r.nodes) {
    for (const auto& e : n.entries) {
      const AuditEvent& ev = e.event;
      if (!a.backup.empty() && ev.backup.rfind(a.backup, 0) != 0) continue;
      if (!a.request.empty() && ev.request.rfind(a.request, 0) != 0) continue;
      if (e.time < since) continue;
      const std::string actor =
          ev.kind == "approval" && ev.Get("custodian") ? *ev.Get("custodian") : ev.peer;
      const std::string text = Describe(ev);
      // Witness and checkpoint bookkeeping is per node by nature.
      const std::string key = ev.kind + '\0' + ev.request + '\0' + ev.backup + '\0' + actor + '\0' +
                              text + '\0' + (ev.request.empty() ? n.node : "");
      Line& l = lines[key];
      if (l.nodes.empty() || e.time < l.time) l.time = e.time;
      if (l.nodes.empty()) l = Line{e.time, ev.kind, actor, ev.backup, ev.request, text, {}, &ev};
      l.nodes.push_back(n.node);
    }
  }
  std::map<std::string, std::set<std::string>> outcomes;  // request|custodian -> texts
  for (const auto& [k, l] : lines) {
    if (l.kind == "approval")
      outcomes[l.request + '\0' + l.actor].insert(l.text.substr(0, l.text.find(", signed")));
  }
  std::vector<Line> rows;
  for (auto& [k, l] : lines) {
    if (l.kind == "approval") l.disagree = outcomes[l.request + '\0' + l.actor].size() > 1;
    rows.push_back(l);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Line& x, const Line& y) {
    return x.time != y.time ? x.time < y.time : x.kind < y.kind;
  });
  if (a.last > 0 && rows.size() > a.last) rows.erase(rows.begin(), rows.end() - a.last);
  JsonWriter j;
  j.BeginArray();
  for (const auto& l : rows) {
    if (a.json) {
      j.BeginObject()
          .Field("time", Rfc3339(l.time))
          .Field("kind", l.kind)
          .Field("actor", l.actor)
          .Field("backup", l.backup)
          .Field("request", l.request)
          .Field("text", l.text)
          .Field("nodes_disagree", l.disagree);
      j.Key("nodes").BeginArray();
      for (const auto& n : l.nodes) j.String(n);
      j.EndArray().Key("fields").BeginObject();
      for (const auto& [fk, fv] : l.event->fields) j.Field(fk, fv);
      j.EndObject().EndObject();
      continue;
    }
    std::printf("%s  %-17s %-22s %-12s %s%s%s\n", Rfc3339(l.time).c_str(), Shown(l.kind).c_str(),
                Shown(NodeList(l.nodes)).c_str(), Shown(l.actor).c_str(),
                l.request.empty() ? "" : Shown("req " + l.request.substr(0, 12) + "  ").c_str(),
                Shown(l.text).c_str(), l.disagree ? "  [NODES DISAGREE]" : "");
  }
  j.EndArray();
  if (a.json) std::printf("%s\n", j.str().c_str());
  for (const auto& n : r.nodes) {
    if (!n.reachable) Warn(n.node + ": unreachable");
  }
  return 0;
}

}  // namespace qv
