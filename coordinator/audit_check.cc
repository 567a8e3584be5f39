#include "coordinator/audit_check.h"

#include <map>

namespace qv {

namespace {

Status FetchNode(NodeCaller& c, NodeAudit* out) {
  uint64_t next = 1;
  while (true) {
    Request r;
    r.op = Op::kGetAudit;
    r.a = next;
    r.b = 4096;
    QV_ASSIGN_OR_RETURN(Response resp, CallChecked(c, r));
    QV_ASSIGN_OR_RETURN(auto page, DecodeEntries(resp.payload));
    if (page.empty()) break;
    next = page.back().seq + 1;
    for (auto& e : page) out->entries.push_back(std::move(e));
    if (page.size() < 4096) break;
  }
  Request cp;
  cp.op = Op::kGetCheckpoints;
  QV_ASSIGN_OR_RETURN(Response cresp, CallChecked(c, cp));
  QV_ASSIGN_OR_RETURN(out->checkpoints, DecodeCheckpoints(cresp.payload));
  Request w;
  w.op = Op::kGetWitnessed;
  QV_ASSIGN_OR_RETURN(Response wresp, CallChecked(c, w));
  QV_ASSIGN_OR_RETURN(out->witnessed, DecodeWitnessRecords(wresp.payload));
  return Status::Ok();
}

// "key=value" from an audit detail line.
std::string Field(const std::string& detail, const std::string& key) {
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

AuditReport CheckClusterAudit(ClusterSession& session) {
  const ClusterConfig& cfg = session.config();
  AuditReport report;
  for (size_t i = 0; i < cfg.nodes.size(); ++i) {
    NodeAudit na;
    na.node = cfg.nodes[i].id;
    NodeCaller* c = session.caller(i);
    if (c == nullptr) {
      na.problems.push_back("unreachable: its log could not be checked");
    } else if (Status st = FetchNode(*c, &na); !st.ok()) {
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
      Seen now{Field(e.event.detail, "requester"), Field(e.event.detail, "reply_key"), n.node};
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
      std::string by = Field(e.event.detail, "released_by");
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
