#include "node/node_service.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "crypto/secretbox.h"
#include "quorum/request.h"
#include "quorum/verify.h"

namespace qv {

namespace {

bool Allowed(PeerRole role, Op op) {
  switch (op) {
    case Op::kHealth:
    case Op::kGetManifest:
    case Op::kListBackups:
    case Op::kGetLeaves:
    case Op::kGetAudit:
    case Op::kGetCheckpoints:
    case Op::kGetWitnessed:
    // Fetching units also needs a release on the same connection.
    case Op::kFetchUnits:
      return role != PeerRole::kUnknown;
    case Op::kBeginFragment:
    case Op::kFragmentData:
    case Op::kPrepare:
    case Op::kPublish:
    case Op::kAbort:
      return role == PeerRole::kCoordinator;
    // The certificate is the authority; the carrier only needs to be pinned
    // as someone who runs restores.
    case Op::kRelease:
      return role == PeerRole::kCoordinator || role == PeerRole::kRequester;
  }
  return false;
}

std::string Timestamp() {
  char buf[32];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);  // gmtime's static buffer races between nodes' threads
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

NodeService::NodeService(NodeStore* store, ClusterConfig cluster, std::string node_id, LogSink log,
                         NodeServiceOptions options)
    : store_(store),
      cluster_(std::move(cluster)),
      node_id_(std::move(node_id)),
      log_(std::move(log)),
      opt_(options) {
  if (!log_) log_ = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
}

void NodeService::Log(const std::string& line) const {
  std::lock_guard<std::mutex> lock(log_mu_);
  log_("ts=" + Timestamp() + " node=" + node_id_ + " " + line);
}

void NodeService::Audit(const AuditEvent& e) const {
  if (opt_.audit == nullptr) return;
  Status st = opt_.audit->Append(e);
  if (!st.ok()) Log("event=audit-failure kind=" + e.kind + " error=\"" + st.ToString() + "\"");
}

PeerInfo NodeService::Identify(const noise::DhPublic& remote) const {
  auto matches = [&](const PublicKey& pk) {
    auto x = X25519PublicFromEd25519(pk);
    return x.ok() && *x == remote;
  };
  if (matches(cluster_.coordinator)) return {PeerRole::kCoordinator, "coordinator"};
  for (const auto& n : cluster_.nodes) {
    if (n.id != node_id_ && matches(n.public_key)) return {PeerRole::kNode, n.id};
  }
  for (const auto& r : cluster_.requesters) {
    if (matches(r.public_key)) return {PeerRole::kRequester, r.id};
  }
  return {PeerRole::kUnknown, "unknown:" + HexEncode(ByteSpan(remote.data(), 8))};
}

Response NodeService::Handle(Session& s, const Request& r) {
  const auto start = std::chrono::steady_clock::now();
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
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  char dur[32];
  std::snprintf(dur, sizeof dur, "%.2f", ms);
  const uint64_t bytes = r.payload.size() + resp.payload.size();
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
      return resp;
    case Op::kBeginFragment: {
      if (s.upload_)
        return FailedPrecondition("an upload is already in progress on this connection");
      if (r.a > UINT32_MAX) return InvalidArgument("unit size out of range");
      QV_ASSIGN_OR_RETURN(s.upload_,
                          store_->Begin(r.backup_id, r.fragment, static_cast<uint32_t>(r.a), r.b));
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
      QV_ASSIGN_OR_RETURN(Share share, DecodeShare(r.payload2));
      Status st = s.upload_->Prepare(r.payload, share);
      // A failed prepare discards the upload (the destructor cleans up).
      if (!st.ok()) s.upload_.reset();
      QV_RETURN_IF_ERROR(st);
      s.upload_.reset();
      return resp;
    }
    case Op::kPublish:
      QV_RETURN_IF_ERROR(store_->Publish(r.backup_id));
      Audit({"backup-stored", s.peer_.name, BackupIdToText(r.backup_id), "", ""});
      return resp;
    case Op::kAbort:
      if (s.upload_ && s.upload_->id() == r.backup_id) s.upload_.reset();
      QV_RETURN_IF_ERROR(store_->Abort(r.backup_id));
      return resp;
    case Op::kGetManifest: {
      QV_ASSIGN_OR_RETURN(resp.payload, store_->Manifest(r.backup_id));
      return resp;
    }
    case Op::kListBackups:
      for (const auto& b : store_->List()) {
        if (b.state == "published") resp.ids.push_back(b.id);
      }
      return resp;
    case Op::kGetLeaves: {
      QV_ASSIGN_OR_RETURN(resp.payload, store_->Leaves(r.backup_id));
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
    case Op::kGetAudit: {
      if (opt_.audit == nullptr) return FailedPrecondition("this node keeps no audit log");
      const size_t max = static_cast<size_t>(std::min<uint64_t>(r.b, 4096));
      QV_ASSIGN_OR_RETURN(auto entries, opt_.audit->Entries(r.a, max));
      resp.payload = EncodeEntries(entries);
      return resp;
    }
    case Op::kGetCheckpoints: {
      if (opt_.audit == nullptr) return FailedPrecondition("this node keeps no audit log");
      QV_ASSIGN_OR_RETURN(auto cps, opt_.audit->Checkpoints());
      resp.payload = EncodeCheckpoints(cps);
      return resp;
    }
    case Op::kGetWitnessed: {
      if (opt_.audit == nullptr) return FailedPrecondition("this node keeps no audit log");
      QV_ASSIGN_OR_RETURN(auto recs, opt_.audit->Witnessed());
      resp.payload = EncodeWitnessRecords(recs);
      return resp;
    }
  }
  return InvalidArgument("unknown request");
}

}  // namespace qv

namespace qv {

Result<Response> NodeService::Release(Session& s, const Request& r) {
  const std::string backup = BackupIdToText(r.backup_id);
  const std::string& peer = s.peer_.name;
  auto refuse = [&](const std::string& kind, const std::string& request, const Status& why) {
    Audit({kind, peer, backup, request, why.message()});
    return Status(StatusCode::kPermissionDenied, why.message());
  };
  auto cert = Certificate::Parse(r.payload);
  if (!cert.ok()) return refuse("refusal", "", cert.status().WithContext("unreadable certificate"));
  const QuorumRequest& q = cert->request.request();
  const std::string rid = RequestIdToText(cert->request.id());
  Audit({"request", peer, backup, rid,
         "requester=" + q.requester_id + " purpose=\"" + q.purpose + "\" destination=\"" +
             q.destination + "\" reply_key=" + HexEncode(q.reply_key) +
             " expires=" + std::to_string(q.expires_unix)});
  // Signatures are checked once, by the verifier; a bad one refuses the
  // certificate and its refusal entry names the custodian.
  for (const Approval& a : cert->approvals) {
    Audit({"approval", peer, backup, rid,
           "custodian=" + a.custodian_id + " decision=" + (a.approve ? "approve" : "deny")});
  }
  auto encoded = store_->Manifest(r.backup_id);
  if (!encoded.ok()) return refuse("refusal", rid, encoded.status());
  auto sm = SignedManifest::Parse(*encoded, &cluster_.coordinator);
  if (!sm.ok()) return refuse("refusal", rid, sm.status().WithContext("stored manifest"));
  const int64_t now = opt_.clock->NowUnix();
  VerifyInput in;
  in.operation = kOpRestore;
  in.backup_id = r.backup_id;
  in.manifest = &*sm;
  in.requesters = &cluster_.requesters;
  in.now = now;
  in.max_skew = opt_.max_skew;
  auto verdict = VerifyCertificate(*cert, in);
  if (!verdict.ok()) return refuse("refusal", rid, verdict.status());
  Status spent = store_->SpendRequest(rid, r.backup_id, now);
  if (spent.code() == StatusCode::kAlreadyExists) {
    return refuse("replay", rid,
                  Status(StatusCode::kPermissionDenied,
                         spent.message() + " (possible attack: certificate reuse)"));
  }
  QV_RETURN_IF_ERROR(spent);
  QV_ASSIGN_OR_RETURN(SecretBytes share, store_->ReadShare(r.backup_id));
  QV_ASSIGN_OR_RETURN(Bytes sealed, SealToKey(q.reply_key, share));
  s.released_[r.backup_id] = q.expires_unix + opt_.max_skew;
  std::string approvers;
  for (const auto& id : verdict->approvers) approvers += (approvers.empty() ? "" : ",") + id;
  Audit({"release", peer, backup, rid,
         "requester=" + q.requester_id + " reply_key=" + HexEncode(q.reply_key) +
             " approvers=" + approvers + " purpose=\"" + q.purpose + "\""});
  Response resp;
  resp.payload = std::move(sealed);
  return resp;
}

}  // namespace qv
