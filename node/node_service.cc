#include "node/node_service.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "base/crash_point.h"
#include "base/text.h"
#include "crypto/secretbox.h"
#include "node/scrub_wire.h"
#include "quorum/request.h"
#include "quorum/verify.h"

namespace qv {

namespace {

bool Allowed(PeerRole role, Op op) {
  switch (op) {
    case Op::kHealth:
      return role != PeerRole::kUnknown;
    // Custodians read the signed manifest of what they are asked to
    // approve, and nothing else (AwaitsCustodian).
    case Op::kGetManifest:
      return role != PeerRole::kUnknown;
    case Op::kListBackups:
    case Op::kGetLeaves:
    case Op::kGetAudit:
    case Op::kGetCheckpoints:
    case Op::kGetWitnessed:
    case Op::kGetCommit:
    case Op::kGetManifestHash:
    // Fetching units also needs a release on the same connection.
    case Op::kFetchUnits:
      return role != PeerRole::kUnknown && role != PeerRole::kCustodian;
    case Op::kBeginFragment:
    case Op::kFragmentData:
    case Op::kManifestData:
    case Op::kPrepare:
    case Op::kPublish:
    case Op::kAbort:
    // A scrub sends at most kScrubMaxUnits ciphertext units: to the
    // coordinator only, and audited.
    case Op::kScrub:
    case Op::kScrubCoverage:
    // Repair: the coordinator drives it, under a certificate each node
    // checks (kRepairOpen); nodes pass share-recovery values to each other.
    case Op::kRepairOpen:
    case Op::kShareRecoverStart:
    case Op::kShareRecoverDeal:
    case Op::kShareRecoverForward:
    case Op::kRepairInstall:
      return role == PeerRole::kCoordinator;
    case Op::kShareSummand:
    case Op::kSharePartial:
      return role == PeerRole::kNode;
    case Op::kGetManifestHistory:
      return role != PeerRole::kUnknown && role != PeerRole::kCustodian;
    // The certificate is the authority; the carrier only needs to be pinned
    // as someone who runs restores.
    case Op::kRelease:
    case Op::kReleaseReceipt:
      return role == PeerRole::kCoordinator || role == PeerRole::kRequester;
    // The custodians' signatures are the authority; any pinned peer (the
    // custodian itself, the requester, a node) may carry them.
    case Op::kPostDenial:
      return role != PeerRole::kUnknown;
    // Enrollment: the custodians' signatures are the authority; whoever
    // runs ceremonies (the coordinator or a requester) carries them.
    case Op::kEnroll:
      return role == PeerRole::kCoordinator || role == PeerRole::kRequester;
    // The ceremony through the cluster: requesters submit, custodians post
    // their own votes, both list.
    case Op::kSubmitRequest:
      return role == PeerRole::kRequester;
    case Op::kListPending:
      return role == PeerRole::kRequester || role == PeerRole::kCustodian ||
             role == PeerRole::kCoordinator;
    case Op::kPostApproval:
      return role == PeerRole::kCustodian;
  }
  return false;
}

std::string Timestamp(const Clock& clock) {
  char buf[32];
  std::time_t t = static_cast<std::time_t>(clock.NowUnix());
  std::tm tm{};
  gmtime_r(&t, &tm);  // gmtime's static buffer races between nodes' threads
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

NodeService::NodeService(NodeStore* store, ClusterConfig cluster, std::string node_id, LogSink log,
                         NodeServiceOptions options)
    : store_(store),
      cluster_(std::make_shared<const ClusterConfig>(std::move(cluster))),
      node_id_(std::move(node_id)),
      log_(std::move(log)),
      opt_(options) {
  if (opt_.identity != nullptr) {
    x25519_secret_ = opt_.identity->X25519Secret();
    auto pub = X25519PublicFromEd25519(opt_.identity->public_key());
    if (pub.ok()) x25519_public_ = *pub;
  }
  if (!log_) log_ = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  coordinator_ = cluster_->coordinator;
  requesters_ = cluster_->requesters;
  pinned_ = PinKeys(*cluster_);
  recoveries_ = std::make_unique<ShareRecoveries>(node_id_);
}

void NodeService::Log(const std::string& line) const {
  // Lines quote peers' words; escaped here, none can forge or hide a line.
  const std::string shown = Printable(line);
  std::lock_guard<std::mutex> lock(log_mu_);
  log_("ts=" + Timestamp(*opt_.clock) + " node=" + node_id_ + " " + shown);
}

void NodeService::Audit(const AuditEvent& e) const { (void)AuditDurably(e); }

Status NodeService::AuditDurably(const std::vector<AuditEvent>& events, bool checkpoint) const {
  if (opt_.audit == nullptr || events.empty()) return Status::Ok();
  Status st = opt_.audit->AppendAll(events, checkpoint);
  if (!st.ok()) {
    Log("event=audit-failure kind=" + events.back().kind + " error=\"" + st.ToString() + "\"");
  }
  return st;
}

Status NodeService::AuditDurably(const AuditEvent& e) const {
  return AuditDurably(std::vector<AuditEvent>{e});
}

void NodeService::RefuseUnknownPeer(const std::string& address_in, const std::string& name) {
  FlushRefusals();
  const int64_t now = opt_.clock->NowUnix();
  bool first = false;
  std::string address = address_in;
  {
    std::lock_guard<std::mutex> lock(refusals_mu_);
    if (!refusals_.count(address) && refusals_.size() >= opt_.max_refusal_addresses) {
      address = "other";
    }
    auto [it, fresh] = refusals_.try_emplace(address);
    if (fresh) {
      it->second.since = now;
      first = true;
    } else {
      ++it->second.more;
    }
    it->second.last_key = name;
  }
  if (first) {
    Log("peer=" + name + " address=" + address +
        " event=refused reason=\"key not pinned in the cluster file\"");
    Audit({"refusal", name, "", "",
           "connection from " + address + ": key not pinned (further refusals from " + address +
               " in the next " + std::to_string(opt_.refusal_interval_seconds) +
               " s are counted in one entry)"});
  }
}

void NodeService::FlushRefusals(bool all) {
  const int64_t now = opt_.clock->NowUnix();
  std::vector<std::pair<std::string, Refusals>> ended;
  {
    std::lock_guard<std::mutex> lock(refusals_mu_);
    for (auto it = refusals_.begin(); it != refusals_.end();) {
      if (all || now - it->second.since >= opt_.refusal_interval_seconds) {
        ended.emplace_back(it->first, it->second);
        it = refusals_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& [address, r] : ended) {
    if (r.more == 0) continue;
    Log("event=refused-flood address=" + address + " count=" + std::to_string(r.more));
    Audit({"refusal", r.last_key, "", "",
           "connection from " + address + ": key not pinned, " + std::to_string(r.more) +
               " more refusals in " + std::to_string(std::max<int64_t>(1, now - r.since)) +
               " s (last key " + r.last_key + ")"});
  }
}

void NodeService::Settle(const PeerCall& call) {
  auto pending = store_->Pending();
  if (!pending.ok()) {
    Log("event=settle-failed error=\"" + pending.status().ToString() + "\"");
    return;
  }
  for (const auto& p : *pending) {
    const std::string backup = BackupIdToText(p.id);
    auto encoded = store_->StoredManifest(p.id);
    auto sm = encoded.ok() ? SignedManifest::Parse(*encoded, &coordinator_)
                           : Result<SignedManifest>(encoded.status());
    if (!sm.ok()) continue;  // re-indexing vouched for it; a later round retries
    // Our own promise first (past the deadline), so that what we tell peers
    // and what we decide agree.
    auto mine = store_->CommitStateOf(p.id, opt_.clock->NowUnix(), opt_.max_skew);
    if (!mine.ok() || mine->phase == NodeStore::Phase::kCommitted) continue;
    bool all_promised = mine->phase == NodeStore::Phase::kPromised;
    bool committed = false;
    for (const auto& place : sm->manifest().placement) {
      if (place.node_id == node_id_) continue;
      const auto members = cluster();
      const NodeEntry* peer = members->FindNode(place.node_id);
      if (peer == nullptr) {
        all_promised = false;
        continue;
      }
      Request q;
      q.op = Op::kGetCommit;
      q.backup_id = p.id;
      auto resp = call(*peer, q);
      if (!resp.ok() || !resp->ToStatus().ok() || resp->payload.empty()) {
        all_promised = false;  // unreachable: it may hold the record
        continue;
      }
      const auto phase = static_cast<NodeStore::Phase>(resp->payload[0]);
      if (phase == NodeStore::Phase::kCommitted) {
        const ByteSpan record = ByteSpan(resp->payload).subspan(1);
        Status st = store_->Commit(p.id, record, /*from_peer=*/true);
        if (st.ok()) {
          Audit({"backup-stored", peer->id, backup, "",
                 "committed with the commit record " + peer->id + " holds"});
          Log("event=commit backup=" + backup + " from=" + peer->id);
          committed = true;
          break;
        }
        Log("event=commit-refused backup=" + backup + " from=" + peer->id + " error=\"" +
            st.ToString() + "\"");
        all_promised = false;
        continue;
      }
      if (phase == NodeStore::Phase::kPending) all_promised = false;
    }
    if (committed || !all_promised) continue;
    // Presumed abort: no node holds a commit record and none ever will.
    if (Status st = AuditDurably({"backup-aborted", "", backup, "",
                                  "no commit record by the deadline and every peer promised to "
                                  "abort or does not hold it: presumed abort, data removed"});
        !st.ok()) {
      continue;  // no evidence, no deletion; the next round tries again
    }
    Status st = store_->Abort(p.id);
    Log("event=abort backup=" + backup + " outcome=" + (st.ok() ? "ok" : st.ToString()));
  }
}

void NodeService::NotePeerClock(const std::string& peer, std::optional<int64_t> skew) {
  std::vector<std::pair<std::string, AuditEvent>> say;  // log line, audit event
  {
    std::lock_guard<std::mutex> lock(clock_mu_);
    if (!skew) {
      skews_.erase(peer);
    } else {
      skews_[peer] = *skew;
      const bool off = *skew > opt_.max_skew || *skew < -opt_.max_skew;
      auto it = skew_alerted_.find(peer);
      // Alert when a peer first goes beyond the tolerance and whenever its
      // skew moves by more than the tolerance since the last alert.
      if (off && (it == skew_alerted_.end() || *skew - it->second > opt_.max_skew ||
                  it->second - *skew > opt_.max_skew)) {
        skew_alerted_[peer] = *skew;
        const std::string d = "clock of " + peer + " differs from this node's by " +
                              (*skew > 0 ? "+" : "") + std::to_string(*skew) + " s (tolerance " +
                              std::to_string(opt_.max_skew) + " s)";
        say.push_back({"event=clock-skew subject=" + peer + " skew=" + std::to_string(*skew),
                       {"alert", peer, "", "", d}});
      } else if (!off && it != skew_alerted_.end()) {
        skew_alerted_.erase(it);
        say.push_back({"event=clock-skew-resolved subject=" + peer, {}});
      }
    }
    // Suspect only with a majority of all the other nodes against it: a
    // few peers with wrong clocks, or few peers reachable, decide nothing.
    size_t off = 0;
    for (const auto& [p, k] : skews_) off += k > opt_.max_skew || k < -opt_.max_skew;
    const auto members = cluster();
    const size_t peers = members->nodes.size() > 0 ? members->nodes.size() - 1 : 0;
    std::string problem;
    if (peers > 0 && 2 * off > peers) {
      problem = "this node's clock disagrees with " + std::to_string(off) + " of its " +
                std::to_string(peers) + " peers by more than " + std::to_string(opt_.max_skew) +
                " s; nothing is released until it is corrected";
    }
    if (problem.empty() != clock_problem_.empty()) {
      say.push_back(
          {problem.empty() ? "event=clock-trusted" : "event=clock-suspect",
           {"alert", "", "", "",
            problem.empty() ? "clock agrees with the peers again; releases resume" : problem}});
    }
    clock_problem_ = problem;
  }
  for (const auto& [line, event] : say) {
    Log(line);
    if (!event.kind.empty()) Audit(event);
  }
}

std::string NodeService::ClockProblem() const {
  std::lock_guard<std::mutex> lock(clock_mu_);
  return clock_problem_;
}

std::shared_ptr<const ClusterConfig> NodeService::cluster() const {
  std::lock_guard<std::mutex> lock(cluster_mu_);
  return cluster_;
}

PeerInfo NodeService::Identify(const noise::DhPublic& remote) const {
  std::lock_guard<std::mutex> lock(cluster_mu_);
  auto it = pinned_.find(remote);
  if (it != pinned_.end()) return it->second;
  return {PeerRole::kUnknown, "unknown:" + HexEncode(ByteSpan(remote.data(), 8))};
}

// Every pinned key's X25519 form, once: converting them all for every
// connection cost 1.5 ms a handshake in a 100-node cluster. The first
// party listed for a key wins, in the order coordinator, nodes, requesters,
// custodians (a key listed twice is refused by the cluster file anyway).
std::map<noise::DhPublic, PeerInfo> NodeService::PinKeys(const ClusterConfig& cluster) const {
  std::map<noise::DhPublic, PeerInfo> pinned;
  auto pin = [&](const PublicKey& pk, PeerInfo who) {
    if (auto x = X25519PublicFromEd25519(pk); x.ok()) pinned.emplace(*x, std::move(who));
  };
  pin(cluster.coordinator, {PeerRole::kCoordinator, "coordinator", cluster.coordinator});
  for (const auto& n : cluster.nodes) {
    if (n.id != node_id_) pin(n.public_key, {PeerRole::kNode, n.id, n.public_key});
  }
  // A principal whose signing key is in a token proves its channel key
  // instead; the session still carries the signing key, which every check
  // of a request or vote compares against.
  for (const auto& r : cluster.requesters) {
    pin(r.channel(), {PeerRole::kRequester, r.id, r.public_key});
  }
  for (const auto& c : cluster.custodians) {
    pin(c.channel(), {PeerRole::kCustodian, "custodian:" + c.id, c.public_key});
  }
  return pinned;
}

NodeStats NodeService::Stats() {
  NodeStats g;
  g.now = opt_.clock->NowUnix();
  for (const auto& b : store_->List()) {
    (b.state == "published" ? g.backups_published : g.backups_prepared) += 1;
  }
  const StoreUsage usage = store_->Usage();
  g.stored_bytes = usage.stored_bytes;
  g.free_bytes = usage.free_bytes;
  if (auto p = store_->PendingRequests(g.now); p.ok()) g.pending_requests = p->size();
  if (opt_.audit != nullptr) {
    if (auto a = opt_.audit->CountKind("alert"); a.ok()) g.alerts = *a;
  }
  g.last_witness = metrics_.LastWitnessed();
  return g;
}

Response NodeService::Handle(Session& s, const Request& r) {
  const double start = opt_.clock->MonotonicMs();
  Result<Response> out =
      Allowed(s.peer_.role, r.op)
          ? Dispatch(s, r)
          : Result<Response>(PermissionDenied(std::string(OpName(r.op)) + " is not allowed for " +
                                              s.peer_.name));
  if (!out.ok() && out.status().code() == StatusCode::kPermissionDenied && r.op != Op::kRelease) {
    // Release audits its own outcomes in detail.
    Audit({"refusal", s.peer_.name, BackupIdToText(r.backup_id), "",
           std::string(OpName(r.op)) + ": " + out.status().message()});
  }
  Response resp = out.ok() ? std::move(out).value() : Response::FromStatus(out.status());
  resp.node_id = node_id_;
  const double ms = opt_.clock->MonotonicMs() - start;
  char dur[32];
  std::snprintf(dur, sizeof dur, "%.2f", ms);
  const uint64_t bytes = r.payload.size() + resp.payload.size();
  metrics_.Count(OpName(r.op), out.ok() ? Status::Ok() : out.status(), r.payload.size(),
                 resp.payload.size(), ms);
  // Share bytes are counted but never printed; neither is any payload.
  Log("peer=" + s.peer_.name + " req=" + std::string(OpName(r.op)) +
      " backup=" + BackupIdToText(r.backup_id) + " bytes=" + std::to_string(bytes) + " outcome=" +
      (out.ok() ? std::string("ok") : "\"" + out.status().ToString() + "\"") + " ms=" + dur);
  return resp;
}

Result<Response> NodeService::Dispatch(Session& s, const Request& r) {
  Response resp;
  switch (r.op) {
    case Op::kHealth:
      resp.message = "ok";
      // This node's clock, so peers and `qv status` can measure skew.
      AppendU64BE(resp.payload, static_cast<uint64_t>(opt_.clock->NowUnix()));
      // What start-up recovered or set aside stays visible to operators.
      for (const auto& line : store_->recovery()) resp.message += "; " + line;
      AppendBytes(resp.payload, EncodeNodeStats(Stats()));
      return resp;
    case Op::kBeginFragment: {
      if (s.upload_)
        return FailedPrecondition("an upload is already in progress on this connection");
      if (r.a > UINT32_MAX) return InvalidArgument("unit size out of range");
      // A repair uploads the fragments its plan rebuilds on this node,
      // where this node may already hold the backup (in place).
      bool repair = false;
      if (s.repair_ && s.repair_->backup == r.backup_id) {
        const RepairMove* mv = s.repair_->plan.Find(r.fragment);
        if (mv == nullptr || mv->node_id != node_id_) {
          return PermissionDenied("the approved repair does not rebuild fragment " +
                                  std::to_string(r.fragment) + " on " + node_id_);
        }
        repair = true;
      }
      QV_ASSIGN_OR_RETURN(s.upload_, store_->Begin(r.backup_id, r.fragment,
                                                   static_cast<uint32_t>(r.a), r.b, repair));
      return resp;
    }
    case Op::kFragmentData:
      if (!s.upload_ || s.upload_->id() != r.backup_id)
        return FailedPrecondition("no upload in progress");
      QV_RETURN_IF_ERROR(s.upload_->Append(r.payload));
      return resp;
    case Op::kPrepare: {
      if (!s.upload_ || s.upload_->id() != r.backup_id)
        return FailedPrecondition("no upload in progress");
      if (s.repair_ && s.repair_->backup == r.backup_id) {
        return FailedPrecondition("a repaired fragment is installed with repair-install");
      }
      if (opt_.identity == nullptr) {
        return FailedPrecondition("this node has no identity key to open shares with");
      }
      // The share arrives sealed to this node's X25519 key and is opened
      // straight into secure memory.
      QV_ASSIGN_OR_RETURN(
          SecretBytes opened,
          OpenSealed(BoxKeyPair{x25519_public_, x25519_secret_.Clone()}, r.payload2));
      QV_ASSIGN_OR_RETURN(Share share, DecodeShare(opened.span()));
      // The deadline: when, with no commit record, the node presumes abort.
      // Within a week; any later would hold prepared data that long.
      const int64_t now = opt_.clock->NowUnix();
      if (r.a <= static_cast<uint64_t>(now) || r.a > static_cast<uint64_t>(now) + 7 * 86400) {
        return InvalidArgument("commit deadline out of range");
      }
      const Bytes manifest = r.payload.empty() ? std::move(s.manifest_) : r.payload;
      s.manifest_ = Bytes();
      if (Status bound = CheckIdAcrossPeers(r.backup_id, manifest, s.peer_.name); !bound.ok()) {
        s.upload_.reset();
        return bound;
      }
      Status st = s.upload_->Prepare(manifest, share, static_cast<int64_t>(r.a));
      // A failed prepare discards the upload (the destructor cleans up).
      if (!st.ok()) s.upload_.reset();
      QV_RETURN_IF_ERROR(st);
      s.upload_.reset();
      CrashPoint(node_id_ + ":after-prepare");
      return resp;
    }
    case Op::kPublish:
      QV_RETURN_IF_ERROR(store_->Commit(r.backup_id, r.payload, /*from_peer=*/false));
      CrashPoint(node_id_ + ":after-publish");
      Audit({"backup-stored", s.peer_.name, BackupIdToText(r.backup_id), "", ""});
      return resp;
    case Op::kAbort:
      if (s.upload_ && s.upload_->id() == r.backup_id) s.upload_.reset();
      QV_RETURN_IF_ERROR(store_->Abort(r.backup_id));
      return resp;
    case Op::kGetManifest: {
      if (s.peer_.role == PeerRole::kCustodian) QV_RETURN_IF_ERROR(AwaitsCustodian(s, r.backup_id));
      if (r.b == 0) {
        QV_ASSIGN_OR_RETURN(resp.payload, store_->Manifest(r.backup_id));
        return resp;
      }
      uint64_t total = 0;
      QV_ASSIGN_OR_RETURN(Bytes slice,
                          store_->ManifestSlice(
                              r.backup_id, r.a,
                              static_cast<size_t>(std::min<uint64_t>(r.b, kManifestPage)), &total));
      AppendU64BE(resp.payload, total);
      AppendBytes(resp.payload, slice);
      return resp;
    }
    case Op::kManifestData:
      if (!s.upload_ || s.upload_->id() != r.backup_id) {
        return FailedPrecondition("no upload in progress");
      }
      if (s.manifest_.size() + r.payload.size() > kMaxManifestSize) {
        return InvalidArgument("manifest over " + std::to_string(kMaxManifestSize >> 20) + " MiB");
      }
      AppendBytes(s.manifest_, r.payload);
      return resp;
    case Op::kListBackups:
      // ids: published; payload: the ids still prepared (committing), so a
      // lister can tell agreement from a commit in progress.
      for (const auto& b : store_->List()) {
        if (b.state == "published") resp.ids.push_back(b.id);
        if (b.state == "prepared") AppendBytes(resp.payload, b.id);
      }
      return resp;
    case Op::kGetLeaves: {
      uint64_t total = 0;
      QV_ASSIGN_OR_RETURN(
          resp.payload,
          store_->LeavesSlice(r.backup_id, r.a, r.b == 0 ? kLeavesPage : std::min(r.b, kLeavesPage),
                              &total));
      if (r.b == 0 && total > kLeavesPage) {
        return InvalidArgument(std::to_string(total) +
                               " leaves do not fit one answer: ask for them in pages");
      }
      return resp;
    }
    case Op::kFetchUnits: {
      auto it = s.released_.find(r.backup_id);
      if (it == s.released_.end() || opt_.clock->NowUnix() > it->second) {
        return PermissionDenied(
            "fetch-units needs a quorum certificate for this backup, released on this "
            "connection and unexpired");
      }
      QV_ASSIGN_OR_RETURN(resp.payload, store_->ReadUnits(r.backup_id, r.a, r.b, kHeaderReserve,
                                                          std::move(s.spare_)));
      return resp;
    }
    case Op::kRelease:
      return Release(s, r);
    case Op::kPostDenial:
      return PostDenial(s, r);
    case Op::kEnroll:
      return Enroll(s, r);
    case Op::kSubmitRequest:
      return SubmitRequest(s, r);
    case Op::kListPending:
      return ListPending(s, r);
    case Op::kPostApproval:
      return PostApproval(s, r);
    case Op::kScrub:
      return Scrub(s, r);
    case Op::kScrubCoverage: {
      QV_ASSIGN_OR_RETURN(Bytes encoded, store_->Manifest(r.backup_id));
      QV_ASSIGN_OR_RETURN(SignedManifest sm, SignedManifest::Parse(encoded, &coordinator_));
      QV_ASSIGN_OR_RETURN(ScrubCoverage c, store_->Coverage(r.backup_id));
      resp.payload = EncodeCoverage(c, sm.manifest().stripe_count);
      return resp;
    }
    case Op::kRepairOpen:
      return RepairOpen(s, r);
    case Op::kShareRecoverStart:
      return ShareRecoverStart(s, r);
    case Op::kShareRecoverDeal:
      return ShareRecoverDeal(s, r);
    case Op::kShareRecoverForward:
      return ShareRecoverForward(s, r);
    case Op::kShareSummand:
    case Op::kSharePartial:
      return ShareValue(s, r);
    case Op::kRepairInstall:
      return RepairInstall(s, r);
    case Op::kGetManifestHistory:
      return ManifestHistory(r);
    case Op::kGetManifestHash: {
      QV_ASSIGN_OR_RETURN(Bytes m, store_->StoredManifest(r.backup_id));
      const Digest h = Sha256Of(m);
      resp.payload.assign(h.begin(), h.end());
      return resp;
    }
    case Op::kGetCommit: {
      QV_ASSIGN_OR_RETURN(auto state,
                          store_->CommitStateOf(r.backup_id, opt_.clock->NowUnix(), opt_.max_skew));
      resp.payload.push_back(static_cast<uint8_t>(state.phase));
      AppendBytes(resp.payload, state.record);
      return resp;
    }
    case Op::kReleaseReceipt: {
      // Recorded only for a request this node spent, naming cluster nodes
      // that include itself: a receipt cannot plant claims about requests
      // or nodes the node knows nothing of.
      QV_ASSIGN_OR_RETURN(ReleaseReceipt rc, DecodeReceipt(r.payload));
      const std::string rid = RequestIdToText(rc.request_id);
      if (!store_->Spent(rid, r.backup_id)) {
        return FailedPrecondition("no release of request " + rid.substr(0, 16) + " here");
      }
      std::string by;
      bool self = false;
      for (const auto& id : rc.released_by) {
        const auto members = cluster();
        if (members->FindNode(id) == nullptr) {
          return InvalidArgument("receipt names " + Printable(id) + ", not a node of the cluster");
        }
        self |= id == node_id_;
        by += (by.empty() ? "" : ",") + id;
      }
      if (!self) return InvalidArgument("receipt does not name this node");
      QV_RETURN_IF_ERROR(AuditDurably({"receipt",
                                       s.peer_.name,
                                       BackupIdToText(r.backup_id),
                                       rid,
                                       "released_by=" + by,
                                       {{"released_by", by}}}));
      return resp;
    }
    case Op::kGetAudit: {
      if (opt_.audit == nullptr) return FailedPrecondition("this node keeps no audit log");
      const size_t max = static_cast<size_t>(std::min<uint64_t>(r.b, kListPage));
      QV_ASSIGN_OR_RETURN(auto entries, opt_.audit->Entries(r.a, max));
      resp.payload = EncodeEntries(entries);
      return resp;
    }
    case Op::kGetCheckpoints: {
      if (opt_.audit == nullptr) return FailedPrecondition("this node keeps no audit log");
      std::vector<Checkpoint> cps;
      if (r.b == 0) {
        QV_ASSIGN_OR_RETURN(auto newest, opt_.audit->NewestCheckpoint());
        if (newest) cps.push_back(std::move(*newest));
      } else {
        QV_ASSIGN_OR_RETURN(cps, opt_.audit->Checkpoints(r.a, std::min(r.b, kListPage)));
      }
      resp.payload = EncodeCheckpoints(cps);
      return resp;
    }
    case Op::kGetWitnessed: {
      if (opt_.audit == nullptr) return FailedPrecondition("this node keeps no audit log");
      QV_ASSIGN_OR_RETURN(
          auto recs, opt_.audit->Witnessed(r.a, r.b == 0 ? kListPage : std::min(r.b, kListPage)));
      resp.payload = EncodeWitnessRecords(recs);
      return resp;
    }
  }
  return InvalidArgument("unknown request");
}

}  // namespace qv

namespace qv {

std::string ReleaseRetryContext(const RequestId& request, const std::string& node_id) {
  std::string c = "quorumvault/release-retry/v1";
  c.push_back('\0');
  c.append(reinterpret_cast<const char*>(request.data()), request.size());
  c.append(node_id);
  return c;
}

// Release, in the order that keeps the audit trail ahead of every secret:
// the certificate is checked, the request id is spent durably, and then
// one audit commit records the request, each approval with its
// verification result, the retry if it is one, and the release, with a
// checkpoint of the new head (so the next witness round countersigns it).
// Only after that commit does the sealed share leave. If the audit write
// fails, nothing is released (fail closed); the spent request can then be
// retried by the holder of its reply key. A refusal is committed the same
// way, with the request and approvals it judged.
Result<Response> NodeService::Release(Session& s, const Request& r) {
  const std::string backup = BackupIdToText(r.backup_id);
  const std::string& peer = s.peer_.name;
  std::vector<AuditEvent> events;
  auto refuse = [&](const std::string& kind, const std::string& request, const Status& why) {
    return RefuseAudited(events, {kind, peer, backup, request, why.message()}, why);
  };
  auto cert = Certificate::Parse(r.payload);
  if (!cert.ok()) return refuse("refusal", "", cert.status().WithContext("unreadable certificate"));
  const QuorumRequest& q = cert->request.request();
  const std::string rid = RequestIdToText(cert->request.id());
  events.push_back({"request",
                    peer,
                    backup,
                    rid,
                    "requester=" + q.requester_id + " purpose=\"" + q.purpose +
                        "\" destination=\"" + q.destination + "\" reply_key=" +
                        HexEncode(q.reply_key) + " expires=" + std::to_string(q.expires_unix),
                    {{"requester", q.requester_id},
                     {"purpose", q.purpose},
                     {"destination", q.destination},
                     {"expires", std::to_string(q.expires_unix)}}});
  // Only the requester the request names may present it, proved by the
  // channel: anyone else holding the files (even the coordinator key)
  // could otherwise spend the certificate first.
  if (s.peer_.role != PeerRole::kRequester || s.peer_.key != q.requester_key) {
    return refuse(
        "refusal", rid,
        PermissionDenied("only the requester the request names (" + Printable(q.requester_id) +
                         ") may present its certificate, not " + peer));
  }
  // A node whose clock its peers contradict cannot judge lifetimes.
  if (const std::string clock = ClockProblem(); !clock.empty()) {
    return refuse("refusal", rid, PermissionDenied(clock));
  }
  auto encoded = store_->Manifest(r.backup_id);
  if (!encoded.ok()) return refuse("refusal", rid, encoded.status());
  auto sm = SignedManifest::Parse(*encoded, &coordinator_);
  if (!sm.ok()) return refuse("refusal", rid, sm.status().WithContext("stored manifest"));
  const int64_t now = opt_.clock->NowUnix();
  VerifyInput in;
  in.operation = kOpRestore;
  in.backup_id = r.backup_id;
  in.manifest = &*sm;
  in.requesters = &requesters_;
  in.now = now;
  in.max_skew = opt_.max_skew;
  auto known = store_->Denials(rid);
  if (!known.ok()) return refuse("refusal", rid, known.status());
  in.known_deniers = &*known;
  std::vector<ApprovalCheck> checks;
  auto verdict = VerifyCertificate(*cert, in, &checks);
  AppendApprovalEvents(checks, peer, backup, rid, &events);
  // Denials are kept whatever the verdict: one left out of a later
  // certificate for this request still vetoes it here.
  if (Status kept = RememberDenials(rid, checks); !kept.ok()) {
    return refuse("refusal", rid, kept);
  }
  if (!verdict.ok() && !opt_.test_skip_quorum_check) {
    return refuse("refusal", rid, verdict.status());
  }
  Status spent = store_->SpendRequest(rid, r.backup_id, now);
  bool retry = false;
  if (spent.code() == StatusCode::kAlreadyExists) {
    // A certificate already used here may come back, within its lifetime,
    // from whoever holds the request's one-time reply key (a restore that
    // failed for a local reason); anyone else is replaying it.
    Status proof =
        opt_.identity == nullptr
            ? PermissionDenied("this node checks no proofs")
            : VerifyPossession(x25519_secret_, x25519_public_, q.reply_key,
                               AsBytes(ReleaseRetryContext(cert->request.id(), node_id_)),
                               r.payload2);
    if (!proof.ok()) {
      return refuse("replay", rid,
                    Status(StatusCode::kPermissionDenied,
                           spent.message() + " (possible attack: certificate reuse; " +
                               proof.message() + ")"));
    }
    auto retries = store_->CountRetry(rid, opt_.max_retries);
    if (!retries.ok()) return refuse("replay", rid, retries.status());
    retry = true;
    events.push_back({"retry", peer, backup, rid,
                      "presentation " + std::to_string(*retries + 1) + " of at most " +
                          std::to_string(opt_.max_retries + 1) +
                          ", by the holder of the reply key"});
  } else {
    QV_RETURN_IF_ERROR(spent);
  }
  QV_ASSIGN_OR_RETURN(SecretBytes share, store_->ReadShare(r.backup_id, sm->Hash()));
  QV_ASSIGN_OR_RETURN(Bytes sealed, SealToKey(q.reply_key, share));
  std::string approvers;
  if (verdict.ok()) {
    for (const auto& id : verdict->approvers) approvers += (approvers.empty() ? "" : ",") + id;
  }
  events.push_back({"release",
                    peer,
                    backup,
                    rid,
                    "requester=" + q.requester_id + " reply_key=" + HexEncode(q.reply_key) +
                        " approvers=" + approvers + (retry ? " retry=yes" : "") + " purpose=\"" +
                        q.purpose + "\"",
                    {{"requester", q.requester_id},
                     {"reply_key", HexEncode(q.reply_key)},
                     {"approvers", approvers},
                     {"retry", retry ? "yes" : "no"},
                     {"purpose", q.purpose}}});
  if (Status st = AuditDurably(events, /*checkpoint=*/true); !st.ok()) {
    Log("event=release-refused reason=\"audit log unavailable\" error=\"" + st.message() + "\"");
    return Status(StatusCode::kPermissionDenied,
                  "the audit log cannot be written (" + st.message() +
                      "); nothing is released without its audit entry");
  }
  s.released_[r.backup_id] = q.expires_unix + opt_.max_skew;
  Response resp;
  resp.payload = std::move(sealed);
  return resp;
}

// Each approval as it was judged: no entry says a custodian approved
// something they did not sign.
void AppendApprovalEvents(const std::vector<ApprovalCheck>& checks, const std::string& peer,
                          const std::string& backup, const std::string& rid,
                          std::vector<AuditEvent>* events) {
  for (const ApprovalCheck& c : checks) {
    // The facts as fields too, for `qv audit log` (who signed, when, the
    // note: validated text of at most kMaxNote bytes).
    events->push_back({"approval",
                       peer,
                       backup,
                       rid,
                       "custodian=" + c.custodian +
                           " decision=" + (c.approve ? "approve" : "deny") +
                           " result=" + (c.valid() ? "valid" : "\"" + c.result + "\"") +
                           " signed=" + std::to_string(c.signed_unix) + " note=\"" + c.note + "\"",
                       {{"custodian", c.custodian},
                        {"decision", c.approve ? "approve" : "deny"},
                        {"result", c.result},
                        {"signed", std::to_string(c.signed_unix)},
                        {"note", c.note}}});
  }
}

Status NodeService::RefuseAudited(std::vector<AuditEvent>& events, AuditEvent refusal,
                                  const Status& why) {
  events.push_back(std::move(refusal));
  Status audited = AuditDurably(events);
  return Status(
      StatusCode::kPermissionDenied,
      audited.ok()
          ? why.message()
          : why.message() + " (and the refusal could not be audited: " + audited.message() + ")");
}

Status NodeService::RememberDenials(const std::string& rid,
                                    const std::vector<ApprovalCheck>& checks) {
  std::vector<std::string> deniers;
  for (const auto& c : checks) {
    if (!c.approve && c.valid()) deniers.push_back(c.custodian);
  }
  if (deniers.empty()) return Status::Ok();
  Status st = store_->RecordDenials(rid, deniers);
  if (!st.ok()) {
    Log("event=denial-not-recorded request=" + rid.substr(0, 16) + " error=\"" + st.message() +
        "\"");
  }
  return st;
}

// A custodian's denial, posted to the node (by the custodian or anyone
// pinned): verified as a release verifies approvals, then kept for good
// and audited, so the requester cannot leave it out of a certificate.
Result<Response> NodeService::PostDenial(Session& s, const Request& r) {
  QV_ASSIGN_OR_RETURN(Certificate cert, Certificate::Parse(r.payload));
  if (cert.approvals.empty()) return InvalidArgument("no denial to post");
  for (const auto& a : cert.approvals) {
    if (a.approve)
      return InvalidArgument("only denials are posted; approvals travel in certificates");
  }
  const std::string rid = RequestIdToText(cert.request.id());
  QV_ASSIGN_OR_RETURN(Bytes encoded, store_->Manifest(r.backup_id));
  QV_ASSIGN_OR_RETURN(SignedManifest sm, SignedManifest::Parse(encoded, &coordinator_));
  VerifyInput in;
  in.operation = cert.request.request().operation == kOpRepair ? kOpRepair : kOpRestore;
  in.backup_id = r.backup_id;
  in.manifest = &sm;
  in.requesters = &requesters_;
  in.now = opt_.clock->NowUnix();
  in.max_skew = opt_.max_skew;
  std::vector<ApprovalCheck> checks;
  (void)VerifyCertificate(cert, in, &checks);  // the verdict is a refusal: all are denials
  QV_RETURN_IF_ERROR(CheckRequest(cert.request, in));
  std::string bad, by;
  for (const auto& c : checks) {
    if (!c.valid()) bad += (bad.empty() ? "" : "; ") + Printable(c.custodian) + ": " + c.result;
    by += (by.empty() ? "" : ",") + c.custodian;
  }
  if (!bad.empty()) return PermissionDenied("denial not taken: " + bad);
  QV_RETURN_IF_ERROR(RememberDenials(rid, checks));
  QV_RETURN_IF_ERROR(
      AuditDurably({"denial", s.peer_.name, BackupIdToText(r.backup_id), rid, "denied_by=" + by}));
  Response resp;
  resp.message = "denial of " + by + " recorded";
  return resp;
}

// Proofs of retrievability (node/scrub_wire.h): each challenged unit's leaf
// hash computed from the data on disk (or the unit itself), its inclusion
// proof from the stored leaves, and a proof of holding the share.
Result<Response> NodeService::Scrub(Session& s, const Request& r) {
  QV_ASSIGN_OR_RETURN(ScrubChallenge c, DecodeScrubChallenge(r.payload));
  QV_ASSIGN_OR_RETURN(Bytes encoded, store_->Manifest(r.backup_id));
  QV_ASSIGN_OR_RETURN(SignedManifest sm, SignedManifest::Parse(encoded, &coordinator_));
  if (c.items.size() * uint64_t{sm.manifest().unit_size} > kScrubMaxReadBytes) {
    return InvalidArgument("a challenge may read at most " +
                           std::to_string(kScrubMaxReadBytes >> 20) + " MiB of the fragment");
  }
  QV_ASSIGN_OR_RETURN(Bytes leaf_bytes, store_->Leaves(r.backup_id));
  std::vector<Digest> leaf_list(leaf_bytes.size() / 32);
  for (size_t i = 0; i < leaf_list.size(); ++i) {
    std::copy_n(leaf_bytes.begin() + static_cast<std::ptrdiff_t>(32 * i), 32, leaf_list[i].begin());
  }
  // The tree once per challenge (O(stripes) hashes), then each of up to
  // kScrubMaxIndices proofs is O(log stripes).
  const MerkleTree tree(std::move(leaf_list));
  const std::vector<Digest>& leaves = tree.Level0();
  ScrubAnswer a;
  size_t sent = 0;
  for (const auto& [index, want_unit] : c.items) {
    ScrubItem it;
    it.index = index;
    if (index < leaves.size()) it.proof = tree.Proof(static_cast<size_t>(index));
    auto unit = store_->ReadUnits(r.backup_id, index, 1);
    if (opt_.test_scrub_from_leaves && index < leaves.size() && !want_unit) {
      it.leaf = leaves[index];  // the broken node: the stored hash, not the data's
    } else if (opt_.test_scrub_from_leaves) {
      it.kind = 2;
      it.error = "unit unavailable";
    } else if (!unit.ok()) {
      it.kind = 2;
      it.error = unit.status().message();
    } else if (want_unit) {
      it.kind = 1;
      it.unit = std::move(unit).value();
      ++sent;
    } else {
      it.leaf = MerkleLeafHash(*unit);
    }
    a.items.push_back(std::move(it));
  }
  // The units answered from the data count toward this fragment's
  // coverage (the scrubber checks them; a unit this node could not read is
  // never counted).
  std::vector<uint64_t> checked;
  for (const auto& it : a.items) {
    if (it.kind != 2 && !opt_.test_scrub_from_leaves) checked.push_back(it.index);
  }
  if (Status covered = store_->Cover(r.backup_id, std::move(checked), sm.manifest().stripe_count,
                                     opt_.clock->NowUnix());
      !covered.ok()) {
    Log("event=scrub-coverage-not-recorded error=\"" + covered.message() + "\"");
  }
  auto plain = store_->ReadShare(r.backup_id, sm.Hash());
  Result<Share> share = plain.ok() ? DecodeShare(plain->span()) : Result<Share>(plain.status());
  if (share.ok()) {
    auto proof = ProveShare(*share, ScrubProofContext(c.nonce, node_id_, r.backup_id));
    if (proof.ok()) {
      a.share_proved = true;
      a.share_proof = *proof;
    } else {
      a.share_error = proof.status().message();
    }
  } else {
    a.share_error = share.status().message();
  }
  QV_RETURN_IF_ERROR(AuditDurably({"scrub", s.peer_.name, BackupIdToText(r.backup_id), "",
                                   "units_checked=" + std::to_string(c.items.size()) +
                                       " units_sent=" + std::to_string(sent) +
                                       " share=" + (a.share_proved ? "proved" : "unreadable")}));
  Response resp;
  resp.payload = EncodeScrubAnswer(a);
  return resp;
}

// Asking every peer would cost each node n-1 calls per backup (n^2 in
// all: a 100-node backup outlived its commit window in sim/). m+1 answers
// suffice: if the id's true manifest is recoverable, at least k-1 of this
// node's placement peers hold it, so at most m do not, and any m+1 peers
// that answer include a holder. Peers are asked from the one after this
// node on, so the load spreads.
Status NodeService::CheckIdAcrossPeers(const BackupId& id, ByteSpan manifest,
                                       const std::string& by) {
  if (!opt_.peers) return Status::Ok();
  auto sm = SignedManifest::Parse(manifest, &coordinator_);
  if (!sm.ok()) return Status::Ok();  // refused when the upload is prepared
  const Digest manifest_hash = Sha256Of(manifest);
  std::vector<const NodeEntry*> peers;
  size_t self = 0;
  const auto members = cluster();  // held while `n` is used
  for (const auto& p : sm->manifest().placement) {
    if (p.node_id == node_id_) self = peers.size();
    const NodeEntry* n = members->FindNode(p.node_id);
    if (n != nullptr && n->id != node_id_) peers.push_back(n);
  }
  const size_t enough = size_t{sm->manifest().m} + 1;
  size_t answered = 0;
  for (size_t i = 0; i < peers.size() && answered < enough; ++i) {
    const NodeEntry& n = *peers[(self + i) % peers.size()];
    Request q;
    q.op = Op::kGetManifestHash;
    q.backup_id = id;
    auto resp = opt_.peers(n, q);
    if (!resp.ok()) continue;  // unreachable: not an answer
    ++answered;
    // Does not hold it: nothing to contradict.
    if (!resp->ToStatus().ok() || resp->payload.size() != manifest_hash.size()) continue;
    if (!std::equal(manifest_hash.begin(), manifest_hash.end(), resp->payload.begin())) {
      const std::string why = "backup " + BackupIdToText(id) + " is bound to another manifest (" +
                              n.id + " holds sha256 " +
                              HexEncode(ByteSpan(resp->payload).first(8)) +
                              "...); a backup id never changes its manifest";
      Log("event=manifest-conflict backup=" + BackupIdToText(id) + " from=" + by +
          " holder=" + n.id);
      Audit({"alert", by, BackupIdToText(id), "", why});
      return PermissionDenied(why);
    }
  }
  return Status::Ok();
}

}  // namespace qv
