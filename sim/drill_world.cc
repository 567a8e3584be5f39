#include "sim/drill_world.h"

#include <sodium.h>

#include <set>

#include "base/corrupt.h"
#include "base/file_util.h"
#include "base/text.h"
#include "coordinator/node_io.h"
#include "crypto/secret.h"

namespace qv::sim {

namespace fs = std::filesystem;

bool IsEvidence(const AuditEntry& e) {
  static const std::set<std::string> kinds = {"refusal", "replay",         "alert",
                                              "denial",  "backup-aborted", "recovery"};
  return kinds.count(e.event.kind) > 0;
}

std::string EvidenceLine(const std::string& node, const AuditEntry& e) {
  std::string d = Printable(e.event.detail);
  if (d.size() > 160) d = d.substr(0, 157) + "...";
  return node + " " + e.event.kind +
         (e.event.peer.empty() ? "" : " (" + Printable(e.event.peer) + ")") + ": " + d;
}

std::vector<std::string> DrillWorld::NodesAt(const std::string& site) const {
  std::vector<std::string> out;
  for (const auto& n : cluster().nodes) {
    if (n.site == site) out.push_back(n.id);
  }
  return out;
}

Result<BackupId> DrillWorld::Backup(const std::string& label, uint64_t size, std::string* detail) {
  StoredArtifact a;
  a.content.resize(size);
  if (size > 0) randombytes_buf(a.content.data(), a.content.size());
  QV_ASSIGN_OR_RETURN(auto session, Session("coordinator"));
  BackupOptions bo;
  bo.k = cluster().k;
  bo.m = cluster().m;
  bo.t = cluster().t;
  Tune(bo);
  Artifact art = MemoryArtifact(label, {{"weights.bin", ByteSpan(a.content)}});
  const double start = ElapsedMs();
  auto out = session->Backup(art, bo);
  session.reset();
  AfterOperation();
  if (!out.ok()) {
    Note("backup " + label + " failed: " + out.status().message());
    *detail = out.status().message();
    return out.status();
  }
  a.id = out->manifest.manifest().backup_id;
  std::string problems;
  for (const auto& p : out->problems) problems += "; " + p;
  *detail = problems.empty() ? "" : problems.substr(2);
  Note("backup " + label + " committed: " + std::to_string(size) + " bytes in " +
       std::to_string(static_cast<int64_t>(ElapsedMs() - start)) + " ms" + problems);
  backups_[label] = std::move(a);
  return backups_[label].id;
}

const DrillWorld::StoredArtifact* DrillWorld::Backed(const std::string& label) const {
  auto it = backups_.find(label);
  return it == backups_.end() ? nullptr : &it->second;
}

Status DrillWorld::Request(const std::string& label, const std::string& backup,
                           const std::string& requester, int64_t ttl, std::string_view operation,
                           const std::string& destination) {
  const StoredArtifact* a = Backed(backup);
  if (a == nullptr) return NotFound("no backup " + backup);
  QV_ASSIGN_OR_RETURN(const SigningKey* key, Key(requester));
  QV_ASSIGN_OR_RETURN(auto session, Session(requester == "attacker" ? "operator" : requester));
  std::vector<std::string> problems;
  QV_ASSIGN_OR_RETURN(SignedManifest sm, session->Manifest(a->id, &problems));
  auto pr = std::make_unique<PendingRequest>();
  pr->reply = NewBoxKeyPair();
  pr->backup = backup;
  QuorumRequest q;
  q.operation = std::string(operation);
  q.backup_id = a->id;
  q.backup_name = Printable(sm.manifest().artifact_name);
  q.manifest_hash = sm.Hash();
  q.requester_id = requester;
  q.requester_key = key->public_key();
  q.reply_key = pr->reply.public_key;
  q.purpose = "drill";
  q.destination = destination;
  q.created_unix = Now().NowUnix();
  q.expires_unix = q.created_unix + ttl;
  randombytes_buf(q.nonce.data(), q.nonce.size());
  QV_ASSIGN_OR_RETURN(SignedRequest sr, SignedRequest::Sign(q, *key));
  pr->request = std::move(sr);
  Note("request " + label + " for backup " + backup + " by " + requester + ", valid " +
       std::to_string(ttl) + " s");
  requests_[label] = std::move(pr);
  return Status::Ok();
}

Result<BackupHealth> DrillWorld::Scrub(const std::string& backup, double sample) {
  const StoredArtifact* a = Backed(backup);
  if (a == nullptr) return NotFound("no backup " + backup);
  QV_ASSIGN_OR_RETURN(auto session, Session("coordinator"));
  ScrubOptions o;
  o.sample = sample;
  auto h = ScrubBackup(*session, a->id, o);
  session.reset();
  AfterOperation();
  if (h.ok()) Note("scrub of " + backup + ": " + h->state);
  return h;
}

Result<RepairPlan> DrillWorld::PlanRepairOf(const std::string& backup) {
  QV_ASSIGN_OR_RETURN(BackupHealth h, Scrub(backup, 0.01));
  QV_ASSIGN_OR_RETURN(auto session, Session("coordinator"));
  std::vector<std::string> problems;
  QV_ASSIGN_OR_RETURN(SignedManifest sm, session->Manifest(h.id, &problems));
  return PlanRepair(session->config(), sm, h);
}

Result<Certificate> DrillWorld::CertificateOf(const std::string& label) const {
  auto it = requests_.find(label);
  if (it == requests_.end()) return NotFound("no request " + label);
  return Certificate{it->second->request, it->second->approvals};
}

Result<RepairReport> DrillWorld::Repair(const std::string& request) {
  auto it = requests_.find(request);
  if (it == requests_.end()) return NotFound("no request " + request);
  Certificate cert{it->second->request, it->second->approvals};
  QV_ASSIGN_OR_RETURN(auto session, Session("coordinator"));
  auto out = RunRepair(*session, cert);
  session.reset();
  AfterOperation();
  Note("repair " + request + ": " + (out.ok() ? "done" : out.status().message()));
  return out;
}

Status DrillWorld::Approve(const std::string& request, const std::string& custodian,
                           const std::string& signer, bool approve) {
  auto it = requests_.find(request);
  if (it == requests_.end()) return NotFound("no request " + request);
  QV_ASSIGN_OR_RETURN(const SigningKey* key, Key(signer));
  QV_ASSIGN_OR_RETURN(Approval a, Approval::Sign(it->second->request, *key, custodian, approve,
                                                 "drill", Now().NowUnix()));
  if (signer != custodian) {
    // A forgery: it claims the custodian's key, but the signature is not theirs.
    if (auto own = Key(custodian); own.ok()) a.custodian_key = (*own)->public_key();
  }
  it->second->approvals.push_back(std::move(a));
  Note(custodian + (approve ? " approves " : " denies ") + request +
       (signer != custodian ? " (signed by " + signer + ")" : ""));
  return Status::Ok();
}

DrillWorld::RestoreResult DrillWorld::Restore(const std::string& request,
                                              const std::string& presenter,
                                              const std::string& approvals_of, bool prove) {
  RestoreResult out;
  auto it = requests_.find(request);
  auto from = requests_.find(approvals_of.empty() ? request : approvals_of);
  if (it == requests_.end() || from == requests_.end()) {
    out.detail = "no request " + request;
    return out;
  }
  PendingRequest& pr = *it->second;
  Certificate cert{pr.request, {}};
  for (const auto& a : from->second->approvals) cert.approvals.push_back(a);
  // Without the one-time secret, a presenter holds some other key.
  BoxKeyPair reply =
      prove ? BoxKeyPair{pr.reply.public_key, pr.reply.secret_key.Clone()} : NewBoxKeyPair();
  const fs::path restores = WorkDir() / "restores";
  std::error_code ec;
  fs::create_directories(restores, ec);
  const fs::path dest = restores / ("r" + std::to_string(++restores_));
  auto session = Session(presenter);
  if (!session.ok()) {
    out.detail = session.status().message();
    return out;
  }
  auto writer = NewFolderWriter(dest);
  if (!writer.ok()) {
    out.detail = writer.status().message();
    return out;
  }
  RestoreOptions ro;
  Tune(ro);
  const double start = ElapsedMs();
  auto report = (*session)->Restore(cert, reply, **writer, ro, &out.problems);
  out.ms = static_cast<int64_t>(ElapsedMs() - start);
  writer->reset();
  session->reset();
  AfterOperation();
  for (const auto& e : fs::directory_iterator(restores, ec)) {
    if (e.path().filename().string().find(dest.filename().string()) != std::string::npos) {
      out.anything_written = true;
    }
  }
  if (!report.ok()) {
    out.code = report.status().code();
    out.detail = report.status().message();
    Note("restore " + request + " failed: " + out.detail);
    return out;
  }
  for (const auto& p : report->problems) out.problems.push_back(p);
  out.restored = true;
  const StoredArtifact* a = Backed(pr.backup);
  auto got = ReadFileBytes(dest / "weights.bin", 1ull << 32);
  out.identical = a != nullptr && got.ok() && *got == a->content;
  Note("restore " + request + " wrote " + std::to_string(report->plaintext_bytes) + " bytes in " +
       std::to_string(out.ms) + " ms, " + (out.identical ? "byte-identical" : "DIFFERENT") +
       (report->reconstructed ? ", parity used" : ""));
  return out;
}

std::map<BackupId, size_t> DrillWorld::Listed() {
  std::map<BackupId, size_t> out;
  auto session = Session("coordinator");
  if (!session.ok()) return out;
  auto listed = (*session)->List();
  if (!listed.ok()) return out;
  for (const auto& l : *listed) out[l.id] = l.published;
  return out;
}

AuditReport DrillWorld::AuditVerify() {
  auto session = Session("coordinator");
  if (!session.ok()) return {};
  return CheckClusterAudit(**session);
}

Status DrillWorld::CorruptFragment(const std::string& node, const std::string& backup) {
  const StoredArtifact* a = Backed(backup);
  if (a == nullptr || cluster().FindNode(node) == nullptr) {
    return NotFound("no such node or backup");
  }
  const fs::path file = DataDir(node) / "backups" / BackupIdToText(a->id) / "fragment";
  if (!CorruptByte(file, 0)) return IoError("cannot corrupt " + file.string());
  Note("attacker flips a byte of " + node + "'s fragment of " + backup);
  return Status::Ok();
}

Status DrillWorld::TearFragment(const std::string& node, const std::string& backup) {
  const StoredArtifact* a = Backed(backup);
  if (a == nullptr || cluster().FindNode(node) == nullptr) {
    return NotFound("no such node or backup");
  }
  const fs::path file = DataDir(node) / "backups" / BackupIdToText(a->id) / "fragment";
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (!ec) fs::resize_file(file, size / 2, ec);
  if (ec) return IoError("cannot tear " + file.string() + ": " + ec.message());
  Note(node + "'s fragment of " + backup + " torn to " + std::to_string(size / 2) + " of " +
       std::to_string(size) + " bytes (power loss)");
  return Status::Ok();
}

Status DrillWorld::ReplaceMasterKey(const std::string& node) {
  if (cluster().FindNode(node) == nullptr) return NotFound("no node " + node);
  const fs::path file = NodeDir(node) / "master.key";
  QV_ASSIGN_OR_RETURN(SecretBytes original, ReadSecretFile(file, 32));
  QV_RETURN_IF_ERROR(Crash(node));
  const SecretBytes other = SecretBytes::Random(32);
  QV_RETURN_IF_ERROR(WriteFileAtomic(file, other.span(), 0600));
  Note(node + "'s master key file replaced with another key");
  Status started = Restart(node);
  // The true key goes back (the node stays down if it refused), so later
  // steps and drills find the node's disk as its operator would restore it.
  QV_RETURN_IF_ERROR(WriteFileAtomic(file, original.span(), 0600));
  return started;
}

Status DrillWorld::PostDenial(const std::string& request, const std::string& custodian) {
  auto it = requests_.find(request);
  if (it == requests_.end()) return NotFound("no request " + request);
  QV_ASSIGN_OR_RETURN(const SigningKey* key, Key(custodian));
  QV_ASSIGN_OR_RETURN(Approval denial, Approval::Sign(it->second->request, *key, custodian,
                                                      /*approve=*/false, "drill", Now().NowUnix()));
  QV_ASSIGN_OR_RETURN(auto session, Session(custodian));
  std::vector<std::string> problems;
  const size_t recorded =
      session->PostDenial(Certificate{it->second->request, {std::move(denial)}}, &problems);
  session.reset();
  AfterOperation();
  Note(custodian + " denies " + request + " and posts the denial to the nodes (" +
       std::to_string(recorded) + " recorded it)");
  if (recorded == 0) {
    std::string why;
    for (const auto& p : problems) why += "; " + p;
    return FailedPrecondition("no node recorded the denial" + why);
  }
  return Status::Ok();
}

}  // namespace qv::sim
