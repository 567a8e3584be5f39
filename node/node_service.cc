#include "node/node_service.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace qv {

namespace {

bool Allowed(PeerRole role, Op op) {
  switch (op) {
    case Op::kHealth:
    case Op::kGetManifest:
    case Op::kListBackups:
    case Op::kGetLeaves:
    case Op::kFetchUnits:
      return role == PeerRole::kCoordinator || role == PeerRole::kNode;
    case Op::kBeginFragment:
    case Op::kFragmentData:
    case Op::kPrepare:
    case Op::kPublish:
    case Op::kAbort:
    // Until quorum certificates exist, only the pinned coordinator may
    // fetch a share; no other identity can obtain one.
    case Op::kFetchShare:
      return role == PeerRole::kCoordinator;
  }
  return false;
}

std::string Timestamp() {
  char buf[32];
  std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

NodeService::NodeService(NodeStore* store, ClusterConfig cluster, std::string node_id, LogSink log)
    : store_(store),
      cluster_(std::move(cluster)),
      node_id_(std::move(node_id)),
      log_(std::move(log)) {
  if (!log_) log_ = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
}

void NodeService::Log(const std::string& line) const {
  std::lock_guard<std::mutex> lock(log_mu_);
  log_("ts=" + Timestamp() + " node=" + node_id_ + " " + line);
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
  return {PeerRole::kUnknown, "unknown:" + HexEncode(ByteSpan(remote.data(), 8))};
}

Response NodeService::Handle(Session& s, const Request& r) {
  const auto start = std::chrono::steady_clock::now();
  Result<Response> out =
      Allowed(s.peer_.role, r.op)
          ? Dispatch(s, r)
          : Result<Response>(PermissionDenied(std::string(OpName(r.op)) + " is not allowed for " +
                                              s.peer_.name));
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
      QV_ASSIGN_OR_RETURN(resp.payload, store_->ReadUnits(r.backup_id, r.a, r.b, kHeaderReserve));
      return resp;
    }
    case Op::kFetchShare: {
      QV_ASSIGN_OR_RETURN(SecretBytes share, store_->ReadShare(r.backup_id));
      // Leaves secure memory only to be encrypted by the channel right away.
      resp.payload.assign(share.data(), share.data() + share.size());
      return resp;
    }
  }
  return InvalidArgument("unknown request");
}

}  // namespace qv
