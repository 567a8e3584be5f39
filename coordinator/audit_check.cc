#include "coordinator/audit_check.h"

#include <chrono>
#include <map>

namespace qv {

namespace {

// Fetches a node's log, checkpoints and witness records page by page,
// within `limits`: a node that keeps answering full pages (a lying or
// broken one) is stopped at the bound and named, and the others are
// checked as usual. Whatever was fetched before a bound is kept.
Status FetchNode(NodeCaller& c, const AuditLimits& limits, NodeAudit* out) {
  const auto deadline = std::chrono::steady_clock::now() + limits.max_time;
  uint64_t bytes = 0;
  auto budget = [&](const char* what, size_t items, size_t max_items) -> Status {
    if (items > max_items) {
      return FailedPrecondition("more than " + std::to_string(max_items) + " " + what +
                                " (the most audit verify reads from one node); not checked "
                                "past that");
    }
    if (bytes > limits.max_bytes) {
      return FailedPrecondition("answered more than " + std::to_string(limits.max_bytes >> 20) +
                                " MiB; not checked past that");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return FailedPrecondition("took longer than " +
                                std::to_string(limits.max_time.count() / 1000) +
                                " s; not checked past that");
    }
    return Status::Ok();
  };
  auto call = [&](Request r) -> Result<Response> {
    QV_ASSIGN_OR_RETURN(Response resp, CallChecked(c, std::move(r)));
    bytes += resp.payload.size();
    return resp;
  };
  uint64_t next = 1;
  while (true) {
    Request r;
    r.op = Op::kGetAudit;
    r.a = next;
    r.b = kListPage;
    QV_ASSIGN_OR_RETURN(Response resp, call(r));
    QV_ASSIGN_OR_RETURN(auto page, DecodeEntries(resp.payload));
    if (page.empty()) break;
    if (page.size() > kListPage || page.front().seq != next) {
      return Corruption("answered entries " + std::to_string(page.front().seq) +
                        ".. when asked for " + std::to_string(next) + "..");
    }
    next = page.back().seq + 1;
    for (auto& e : page) out->entries.push_back(std::move(e));
    QV_RETURN_IF_ERROR(budget("entries", out->entries.size(), limits.max_entries));
    if (page.size() < kListPage) break;
  }
  uint64_t from = 1;
  while (true) {
    Request cp;
    cp.op = Op::kGetCheckpoints;
    cp.a = from;
    cp.b = kListPage;
    QV_ASSIGN_OR_RETURN(Response resp, call(cp));
    QV_ASSIGN_OR_RETURN(auto page, DecodeCheckpoints(resp.payload));
    for (auto& p : page) {
      if (p.seq < from) return Corruption("answered checkpoints out of order");
      from = p.seq + 1;
      out->checkpoints.push_back(std::move(p));
    }
    QV_RETURN_IF_ERROR(budget("checkpoints", out->checkpoints.size(), limits.max_entries));
    if (page.size() < kListPage) break;
  }
  while (true) {
    Request w;
    w.op = Op::kGetWitnessed;
    w.a = out->witnessed.size();
    w.b = kListPage;
    QV_ASSIGN_OR_RETURN(Response resp, call(w));
    QV_ASSIGN_OR_RETURN(auto page, DecodeWitnessRecords(resp.payload));
    for (auto& p : page) out->witnessed.push_back(std::move(p));
    QV_RETURN_IF_ERROR(budget("witness records", out->witnessed.size(), limits.max_entries));
    if (page.size() < kListPage) break;
  }
  return Status::Ok();
}

// A fact an entry records: from its structured fields (audit_record.h,
// v2); an entry written before fields existed (v1) has it only in its
// detail line, as "key=value".
std::string Field(const AuditEntry& e, const std::string& key) {
  if (e.version >= 2) return e.event.Get(key).value_or("");
  const std::string& detail = e.event.detail;
  const std::string k = key + "=";
  size_t p = detail.find(k);
  if (p == std::string::npos) return "";
  p += k.size();
  return detail.substr(p, detail.find(' ', p) - p);
}

}  // namespace

bool AuditReport::ok() const {
  if (!cross_problems.empty()) return false;
  for (const auto& n : nodes) {
    if (!n.reachable || !n.problems.empty()) return false;
  }
  return true;
}

AuditReport CheckClusterAudit(ClusterSession& session, const AuditLimits& limits) {
  std::vector<NodeCaller*> callers;
  for (size_t i = 0; i < session.config().nodes.size(); ++i) callers.push_back(session.caller(i));
  return CheckClusterAudit(session.config(), callers, limits);
}

AuditReport CheckClusterAudit(const ClusterConfig& cfg, const std::vector<NodeCaller*>& callers,
                              const AuditLimits& limits) {
  AuditReport report;
  for (size_t i = 0; i < cfg.nodes.size(); ++i) {
    NodeAudit na;
    na.node = cfg.nodes[i].id;
    NodeCaller* c = i < callers.size() ? callers[i] : nullptr;
    if (c == nullptr) {
      na.problems.push_back("unreachable: its log could not be checked");
    } else if (Status st = FetchNode(*c, limits, &na); !st.ok()) {
      na.problems.push_back("could not fetch its log: " + st.message());
    } else {
      na.reachable = true;
      na.problems = VerifyAuditChain(na.entries, na.checkpoints, cfg.nodes[i].public_key);
    }
    report.nodes.push_back(std::move(na));
  }
  // Witness records against the subject's current log.
  for (const auto& w : report.nodes) {
    const NodeEntry* witness = cfg.FindNode(w.node);
    for (const auto& rec : w.witnessed) {
      const NodeEntry* subject = cfg.FindNode(rec.checkpoint.node_id);
      if (subject == nullptr || witness == nullptr) continue;
      ++report.witness_records_checked;
      if (!rec.Verify(witness->public_key, subject->public_key).ok()) {
        report.cross_problems.push_back(w.node + " holds a witness record of " + subject->id +
                                        " whose signatures do not verify");
        continue;
      }
      const NodeAudit* s = nullptr;
      for (const auto& n : report.nodes) {
        if (n.node == subject->id) s = &n;
      }
      if (s == nullptr || !s->reachable) continue;
      const uint64_t seq = rec.checkpoint.seq;
      if (seq > s->entries.size()) {
        report.cross_problems.push_back(
            subject->id + ": " + w.node + " witnessed its log at entry " + std::to_string(seq) +
            " but it now has " + std::to_string(s->entries.size()) + " (truncated)");
      } else if (s->entries[seq - 1].hash != rec.checkpoint.head) {
        report.cross_problems.push_back(subject->id + ": entry " + std::to_string(seq) +
                                        " differs from what " + w.node +
                                        " witnessed (history rewritten)");
      }
    }
  }
  // Releases: every releasing node agrees on the requester and reply key.
  struct Seen {
    std::string requester, reply_key, first_node;
  };
  std::map<std::string, Seen> releases;
  for (const auto& n : report.nodes) {
    for (const auto& e : n.entries) {
      if (e.event.kind != "release") continue;
      Seen now{Field(e, "requester"), Field(e, "reply_key"), n.node};
      auto [it, fresh] = releases.emplace(e.event.request, now);
      if (!fresh &&
          (it->second.requester != now.requester || it->second.reply_key != now.reply_key)) {
        report.cross_problems.push_back("request " + e.event.request.substr(0, 16) + ": " + n.node +
                                        " and " + it->second.first_node +
                                        " disagree on who it was released to");
      }
    }
  }
  report.releases = releases.size();
  // Receipts: a node that the restore saw release (named in any releasing
  // node's receipt) must still log that release. A release deleted from one
  // log, even past the last witnessed checkpoint, shows against its peers.
  std::map<std::pair<std::string, std::string>, bool> logged;  // (node, request) -> release
  for (const auto& n : report.nodes) {
    for (const auto& e : n.entries) {
      if (e.event.kind == "release") logged[{n.node, e.event.request}] = true;
    }
  }
  std::map<std::pair<std::string, std::string>, std::string> missing;  // -> who says so
  for (const auto& n : report.nodes) {
    for (const auto& e : n.entries) {
      if (e.event.kind != "receipt") continue;
      std::string by = Field(e, "released_by");
      for (size_t p = 0; p <= by.size();) {
        size_t q = by.find(',', p);
        if (q == std::string::npos) q = by.size();
        const std::string node = by.substr(p, q - p);
        p = q + 1;
        const NodeAudit* a = nullptr;
        for (const auto& x : report.nodes) {
          if (x.node == node) a = &x;
        }
        if (a == nullptr || !a->reachable || logged.count({node, e.event.request})) continue;
        missing.emplace(std::make_pair(node, e.event.request), n.node);
      }
    }
  }
  for (const auto& [key, witness] : missing) {
    report.cross_problems.push_back(key.first + ": released request " + key.second.substr(0, 16) +
                                    " (" + witness +
                                    "'s receipt says so) but its log has no release for it "
                                    "(deleted)");
  }
  return report;
}

}  // namespace qv
