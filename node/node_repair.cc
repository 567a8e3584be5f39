// NodeService's part of repair (issue 15; coordinator/repair.h drives it).
//
// Nothing of a repair happens on a node without a certificate for the
// operation "repair" that this node verified itself against the backup's
// signed policy (kRepairOpen), on the connection that asks: fetching
// ciphertext units, starting a share recovery, installing a rebuilt
// fragment or a manifest revision. The certificate's request names the
// manifest and carries the plan (manifest/repair_plan.h) in its
// destination, so each node checks every step against what custodians
// approved: the fragments rebuilt, the nodes they go to, the manifest
// revision that results. It is not spent: a repair touches many nodes over
// several connections and may be retried; once installed, the manifest it
// names is no longer current, so it cannot be used again.
//
// Share recovery (crypto/vss.h, node/share_recovery.h): the coordinator
// tells each helper and the new holder the plan, then each helper sends
// its summands to the other helpers and its partial sum to the new holder
// itself, over node-to-node Noise channels (NodeServiceOptions::peers).
// The coordinator never sees a value.
#include <sodium.h>

#include <algorithm>

#include "base/text.h"
#include "node/node_service.h"

namespace qv {

namespace {

bool SamePlacement(const std::vector<Placement>& a, const std::vector<Placement>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].fragment != b[i].fragment || a[i].node_id != b[i].node_id || a[i].site != b[i].site) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<std::string> NodeService::SiteOf(const std::string& node) const {
  const auto members = cluster();
  const NodeEntry* n = members->FindNode(node);
  if (n == nullptr) return std::nullopt;
  return n->site;
}

Result<Response> NodeService::RepairOpen(Session& s, const Request& r) {
  const std::string backup = BackupIdToText(r.backup_id);
  const std::string& peer = s.peer_.name;
  std::vector<AuditEvent> events;
  auto refuse = [&](const std::string& request, const Status& why) -> Status {
    return RefuseAudited(events, {"refusal", peer, backup, request, "repair: " + why.message()},
                         why);
  };
  auto cert = Certificate::Parse(r.payload);
  if (!cert.ok()) return refuse("", cert.status().WithContext("unreadable certificate"));
  const QuorumRequest& q = cert->request.request();
  const std::string rid = RequestIdToText(cert->request.id());
  events.push_back({"request", peer, backup, rid,
                    "operation=" + q.operation + " requester=" + q.requester_id + " purpose=\"" +
                        q.purpose + "\" plan=\"" + q.destination +
                        "\" expires=" + std::to_string(q.expires_unix)});
  if (const std::string clock = ClockProblem(); !clock.empty()) {
    return refuse(rid, PermissionDenied(clock));
  }
  // The manifest the request names: this node's own; or, where this
  // repair already installed its revision here (a repair resumed after a
  // crash or for a node that was down), the one before it, from this
  // node's history; or (for a node new to the backup) the one the
  // coordinator sends. CheckRequest holds it to the request's hash.
  auto held = store_->Manifest(r.backup_id);
  const bool holds = held.ok();
  auto sm = SignedManifest::Parse(holds ? ByteSpan(*held) : ByteSpan(r.payload2), &coordinator_);
  if (!sm.ok()) return refuse(rid, sm.status().WithContext("manifest"));
  std::optional<SignedManifest> installed;  // this repair's revision, already held here
  if (holds && sm->Hash() != q.manifest_hash && sm->manifest().revision > 0 &&
      sm->manifest().previous == q.manifest_hash) {
    auto history = store_->ManifestHistory(r.backup_id);
    std::optional<SignedManifest> before;
    if (history.ok() && history->size() > 1) before = (*history)[1];
    if (!before) {
      // A new holder keeps no history: the coordinator's copy, if it is
      // the one the request names.
      auto sent = SignedManifest::Parse(r.payload2, &coordinator_);
      if (sent.ok() && sent->Hash() == q.manifest_hash) before = std::move(sent).value();
    }
    if (before) {
      installed = std::move(*sm);
      sm = std::move(*before);
    }
  }
  if (sm->manifest().backup_id != r.backup_id) {
    return refuse(rid, InvalidArgument("the manifest sent is for another backup"));
  }
  VerifyInput in;
  in.operation = kOpRepair;
  in.backup_id = r.backup_id;
  in.manifest = &*sm;
  in.requesters = &requesters_;
  in.now = opt_.clock->NowUnix();
  in.max_skew = opt_.max_skew;
  auto known = store_->Denials(rid);
  if (!known.ok()) return refuse(rid, known.status());
  in.known_deniers = &*known;
  std::vector<ApprovalCheck> checks;
  auto verdict = VerifyCertificate(*cert, in, &checks);
  AppendApprovalEvents(checks, peer, backup, rid, &events);
  if (Status kept = RememberDenials(rid, checks); !kept.ok()) return refuse(rid, kept);
  if (!verdict.ok() && !opt_.test_skip_quorum_check) return refuse(rid, verdict.status());
  auto plan = ParseRepairPlan(q.destination);
  if (!plan.ok()) return refuse(rid, plan.status());
  auto next = ApplyRepairPlan(*sm, *plan, [&](const std::string& n) { return SiteOf(n); });
  if (!next.ok()) return refuse(rid, next.status());
  if (installed && (installed->manifest().revision != next->revision ||
                    installed->manifest().previous != next->previous ||
                    !SamePlacement(installed->manifest().placement, next->placement))) {
    return refuse(rid, PermissionDenied("this node holds a revision this repair does not make"));
  }
  bool part = false;
  for (const auto& p : sm->manifest().placement) part = part || p.node_id == node_id_;
  for (const auto& mv : plan->moves) part = part || mv.node_id == node_id_;
  if (!part) return refuse(rid, PermissionDenied("the repair does not involve " + node_id_));
  if (!holds && !std::any_of(plan->moves.begin(), plan->moves.end(),
                             [&](const RepairMove& mv) { return mv.node_id == node_id_; })) {
    return refuse(rid, NotFound("backup " + backup + " is not on this node"));
  }
  std::string approvers;
  if (verdict.ok()) {
    for (const auto& id : verdict->approvers) approvers += (approvers.empty() ? "" : ",") + id;
  }
  events.push_back({"repair-approved",
                    peer,
                    backup,
                    rid,
                    "requester=" + q.requester_id + " approvers=" + approvers + " plan=\"" +
                        q.destination + "\"",
                    {{"requester", q.requester_id},
                     {"approvers", approvers},
                     {"plan", q.destination},
                     {"purpose", q.purpose}}});
  if (Status st = AuditDurably(events, /*checkpoint=*/true); !st.ok()) {
    return Status(StatusCode::kPermissionDenied,
                  "the audit log cannot be written (" + st.message() +
                      "); no repair step happens without its audit entry");
  }
  Session::RepairGrant g;
  g.backup = r.backup_id;
  g.plan = std::move(plan).value();
  g.manifest = sm->encoded();
  g.request = rid;
  g.expires = q.expires_unix + opt_.max_skew;
  s.repair_ = std::move(g);
  // Ciphertext units may be fetched on this connection (to rebuild
  // fragments from), as after a release.
  if (holds) s.released_[r.backup_id] = s.repair_->expires;
  Response resp;
  resp.message = "repair of " + backup + " approved";
  return resp;
}

Result<const NodeService::Session::RepairGrant*> NodeService::Grant(const Session& s,
                                                                    const BackupId& backup) const {
  if (!s.repair_ || s.repair_->backup != backup) {
    return PermissionDenied(
        "repair needs a certificate for this backup, presented on this "
        "connection (repair-open)");
  }
  if (opt_.clock->NowUnix() > s.repair_->expires) {
    return PermissionDenied("the repair's request has expired");
  }
  return &*s.repair_;
}

Result<Response> NodeService::ShareRecoverStart(Session& s, const Request& r) {
  QV_ASSIGN_OR_RETURN(const Session::RepairGrant* g, Grant(s, r.backup_id));
  QV_ASSIGN_OR_RETURN(RecoveryPlan plan, DecodeRecoveryStart(r.payload));
  plan.backup = r.backup_id;
  plan.fragment = r.fragment;
  plan.expires = g->expires;
  const RepairMove* mv = g->plan.Find(r.fragment);
  if (mv == nullptr || mv->node_id != plan.target) {
    return PermissionDenied("the approved repair does not rebuild share " +
                            std::to_string(r.fragment + 1) + " on " + Printable(plan.target));
  }
  // Helpers: t nodes that hold shares under the manifest the certificate
  // names, each at its own index, none whose share the plan rebuilds.
  QV_ASSIGN_OR_RETURN(SignedManifest sm, SignedManifest::Parse(g->manifest, &coordinator_));
  const Manifest& m = sm.manifest();
  if (plan.helpers.size() != m.t) {
    return InvalidArgument("a share recovery takes exactly t = " + std::to_string(m.t) +
                           " helpers");
  }
  for (size_t i = 0; i < plan.helpers.size(); ++i) {
    bool placed = false;
    for (const auto& p : m.placement) {
      placed = placed || (p.node_id == plan.helpers[i] && p.fragment + 1 == plan.helper_x[i]);
    }
    if (!placed || g->plan.Find(plan.helper_x[i] - 1) != nullptr) {
      return PermissionDenied(Printable(plan.helpers[i]) + " cannot help: it holds no share " +
                              std::to_string(plan.helper_x[i]) + " the repair leaves in place");
    }
  }
  std::optional<Share> own;
  if (plan.target != node_id_) {
    // Beside the manifest this node holds now (the approved one, or this
    // repair's revision if it was installed here already).
    QV_ASSIGN_OR_RETURN(Bytes held, store_->Manifest(r.backup_id));
    auto plain = store_->ReadShare(r.backup_id, Sha256Of(held));
    if (!plain.ok()) return plain.status().WithContext("this helper's share");
    QV_ASSIGN_OR_RETURN(Share sh, DecodeShare(plain->span()));
    own = std::move(sh);
  }
  QV_RETURN_IF_ERROR(AuditDurably(
      {"share-recovery",
       s.peer_.name,
       BackupIdToText(r.backup_id),
       g->request,
       (plan.target == node_id_ ? "as new holder" : "as helper") + std::string(" of share ") +
           std::to_string(r.fragment + 1) + " for " + plan.target,
       {{"share", std::to_string(r.fragment + 1)}, {"target", plan.target}}}));
  QV_RETURN_IF_ERROR(recoveries_->Start(plan, own ? &*own : nullptr, opt_.clock->NowUnix()));
  return Response{};
}

namespace {

Result<RecoveryId> RecoveryIdOf(ByteSpan payload) {
  if (payload.size() != 16) return InvalidArgument("recovery id must be 16 bytes");
  RecoveryId id;
  std::copy(payload.begin(), payload.end(), id.begin());
  return id;
}

}  // namespace

Result<Response> NodeService::ShareRecoverDeal(Session& s, const Request& r) {
  QV_RETURN_IF_ERROR(Grant(s, r.backup_id).status());
  QV_ASSIGN_OR_RETURN(RecoveryId id, RecoveryIdOf(r.payload));
  QV_ASSIGN_OR_RETURN(auto outgoing, recoveries_->TakeOutgoing(id));
  if (!opt_.peers) return FailedPrecondition("this node cannot reach its peers");
  for (auto& [node, value] : outgoing) {
    const auto members = cluster();
    const NodeEntry* n = members->FindNode(node);
    if (n == nullptr) return InvalidArgument(Printable(node) + " is not a cluster node");
    Request q;
    q.op = Op::kShareSummand;
    q.backup_id = r.backup_id;
    q.payload = EncodeRecoveryValue(id, value);
    auto resp = opt_.peers(*n, q);
    sodium_memzero(q.payload.data(), q.payload.size());
    if (!resp.ok()) return resp.status().WithContext("summand to " + node);
    QV_RETURN_IF_ERROR(resp->ToStatus().WithContext("summand to " + node));
  }
  return Response{};
}

Result<Response> NodeService::ShareRecoverForward(Session& s, const Request& r) {
  QV_RETURN_IF_ERROR(Grant(s, r.backup_id).status());
  QV_ASSIGN_OR_RETURN(RecoveryId id, RecoveryIdOf(r.payload));
  QV_ASSIGN_OR_RETURN(auto partial, recoveries_->TakePartial(id));
  if (!opt_.peers) return FailedPrecondition("this node cannot reach its peers");
  const auto members = cluster();
  const NodeEntry* n = members->FindNode(partial.first);
  if (n == nullptr) return InvalidArgument(Printable(partial.first) + " is not a cluster node");
  Request q;
  q.op = Op::kSharePartial;
  q.backup_id = r.backup_id;
  q.payload = EncodeRecoveryValue(id, partial.second);
  auto resp = opt_.peers(*n, q);
  sodium_memzero(q.payload.data(), q.payload.size());
  if (!resp.ok()) return resp.status().WithContext("partial sum to " + partial.first);
  QV_RETURN_IF_ERROR(resp->ToStatus().WithContext("partial sum to " + partial.first));
  return Response{};
}

Result<Response> NodeService::ShareValue(Session& s, const Request& r) {
  QV_ASSIGN_OR_RETURN(auto v, DecodeRecoveryValue(r.payload));
  const int64_t now = opt_.clock->NowUnix();
  if (r.op == Op::kShareSummand) {
    QV_RETURN_IF_ERROR(recoveries_->AddSummand(v.first, s.peer_.name, std::move(v.second), now));
  } else {
    QV_RETURN_IF_ERROR(recoveries_->AddPartial(v.first, s.peer_.name, std::move(v.second), now));
  }
  return Response{};
}

Result<Response> NodeService::RepairInstall(Session& s, const Request& r) {
  QV_ASSIGN_OR_RETURN(const Session::RepairGrant* g, Grant(s, r.backup_id));
  const Bytes incoming = r.payload.empty() ? std::move(s.manifest_) : r.payload;
  s.manifest_ = Bytes();
  QV_ASSIGN_OR_RETURN(SignedManifest next, SignedManifest::Parse(incoming, &coordinator_));
  QV_ASSIGN_OR_RETURN(SignedManifest approved, SignedManifest::Parse(g->manifest, &coordinator_));
  // Exactly the manifest the approved plan gives: the coordinator cannot
  // slip in another placement.
  QV_ASSIGN_OR_RETURN(Manifest want, ApplyRepairPlan(approved, g->plan, [&](const std::string& n) {
                        return SiteOf(n);
                      }));
  const Manifest& got = next.manifest();
  const bool same = got.revision == want.revision && got.previous == want.previous &&
                    SamePlacement(got.placement, want.placement);
  if (!same || (next.Hash() != approved.Hash() && !CheckSuccessor(approved, next).ok())) {
    return PermissionDenied("the manifest sent is not what the approved repair plan gives");
  }
  const std::string backup = BackupIdToText(r.backup_id);
  if (s.upload_ && s.upload_->id() == r.backup_id) {
    std::optional<Share> share;
    if (!r.payload2.empty()) {
      QV_ASSIGN_OR_RETURN(RecoveryId id, RecoveryIdOf(r.payload2));
      QV_ASSIGN_OR_RETURN(Share sh, recoveries_->TakeShare(id, r.backup_id, r.fragment));
      // The new holder checks what the helpers sent against the signed
      // commitments before it keeps anything.
      if (Status v = VerifyShare(sh, got.commitments); !v.ok()) {
        // The upload stays: the coordinator may rebuild the share again
        // with other helpers.
        Audit({"alert", s.peer_.name, backup, g->request,
               "rebuilt share " + std::to_string(sh.x) +
                   " does not match the commitments: a helper sent a wrong value"});
        return v.WithContext("rebuilt share");
      }
      share = std::move(sh);
    }
    QV_RETURN_IF_ERROR(
        AuditDurably({"repair-installed",
                      s.peer_.name,
                      backup,
                      g->request,
                      "fragment " + std::to_string(r.fragment) + (share ? " and its share" : "") +
                          " rebuilt here, manifest revision " + std::to_string(got.revision),
                      {{"fragment", std::to_string(r.fragment)},
                       {"share", share ? "rebuilt" : "kept"},
                       {"revision", std::to_string(got.revision)}}}));
    Status st = s.upload_->Install(incoming, share ? &*share : nullptr);
    s.upload_.reset();
    QV_RETURN_IF_ERROR(st);
    return Response{};
  }
  if (next.Hash() == approved.Hash()) return Response{};  // nothing moved
  // Decommission: the approved plan moves this node's fragment to another
  // node. This node asks that node itself whether it holds the fragment
  // under this revision (the coordinator's word is not enough: wiping
  // first would lose a fragment and a share), then wipes its own copy, the
  // wipe audited first.
  bool placed_here = false;
  for (const auto& p : got.placement) placed_here = placed_here || p.node_id == node_id_;
  if (!placed_here) {
    auto held = store_->Manifest(r.backup_id);
    if (!held.ok()) return Response{};  // wiped before
    const Digest want = next.Hash();
    for (const auto& p : approved.manifest().placement) {
      if (p.node_id != node_id_) continue;
      const RepairMove* mv = g->plan.Find(p.fragment);
      const auto members = cluster();
      const NodeEntry* to = mv == nullptr ? nullptr : members->FindNode(mv->node_id);
      if (to == nullptr || !opt_.peers) {
        return FailedPrecondition("cannot confirm the new holder of fragment " +
                                  std::to_string(p.fragment) + "; nothing is wiped");
      }
      Request ask;
      ask.op = Op::kGetManifestHash;
      ask.backup_id = r.backup_id;
      auto answer = opt_.peers(*to, ask);
      if (!answer.ok() || !answer->ToStatus().ok() || answer->payload.size() != want.size() ||
          !std::equal(want.begin(), want.end(), answer->payload.begin())) {
        return FailedPrecondition(to->id + " does not hold fragment " + std::to_string(p.fragment) +
                                  " under this revision yet; nothing is wiped");
      }
    }
    QV_RETURN_IF_ERROR(
        AuditDurably({"wipe",
                      s.peer_.name,
                      backup,
                      g->request,
                      "this node's fragment and share of the backup erased: revision " +
                          std::to_string(got.revision) + " places them elsewhere",
                      {{"revision", std::to_string(got.revision)}}}));
    QV_RETURN_IF_ERROR(store_->Wipe(r.backup_id));
    return Response{};
  }
  QV_RETURN_IF_ERROR(AuditDurably(
      {"manifest-revision",
       s.peer_.name,
       backup,
       g->request,
       "revision " + std::to_string(got.revision) + " installed",
       {{"revision", std::to_string(got.revision)}, {"sha256", HexEncode(next.Hash())}}}));
  QV_RETURN_IF_ERROR(store_->InstallRevision(r.backup_id, incoming));
  return Response{};
}

Result<Response> NodeService::ManifestHistory(const Request& r) {
  QV_ASSIGN_OR_RETURN(std::vector<SignedManifest> chain, store_->ManifestHistory(r.backup_id));
  if (r.a >= chain.size()) return NotFound("no such revision kept here");
  Response resp;
  resp.payload = chain[static_cast<size_t>(r.a)].encoded();
  resp.message = std::to_string(chain.size());
  return resp;
}

}  // namespace qv
