#include "cli/restore_cmd.h"

#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/file_util.h"
#include "base/json.h"
#include "base/text.h"
#include "cli/catalog_cmd.h"
#include "cli/ceremony_cmd.h"
#include "cli/cli_util.h"
#include "cli/enroll_cmd.h"
#include "coordinator/ceremony.h"
#include "coordinator/cluster.h"
#include "coordinator/local_store.h"
#include "coordinator/pipeline.h"
#include "coordinator/repair.h"
#include "crypto/identity.h"
#include "crypto/secretbox.h"
#include "quorum/request.h"
#include "quorum/verify.h"

namespace fs = std::filesystem;

namespace qv {

int CmdRestoreRequest(const RequestArgs& a) {
  auto ttl = ParseDuration(a.ttl);
  if (!ttl.ok()) return Fail(ttl.status().WithContext("--ttl"));
  const std::string manifest_file = a.out + ".manifest";
  for (const auto& f : {a.out, a.out + ".key", manifest_file}) {
    if (fs::exists(f)) return Fail(AlreadyExists(f + " already exists"));
  }
  auto ctx = OpenCluster(a.cluster, a.key, "operator.key");
  if (!ctx.ok()) return Fail(ctx.status());
  auto id = ResolveBackup(a.backup, *ctx->session);
  if (!id.ok()) return Fail(id.status().WithContext("--backup"));
  const Signer& key = ctx->key.signer();
  const Principal* me = nullptr;
  for (const auto& r : ctx->session->config().requesters) {
    if (r.public_key == key.public_key()) me = &r;
  }
  if (me == nullptr) {
    return Fail(PermissionDenied("this key is not a requester in " + a.cluster));
  }
  const std::string requester_id = me->id;
  std::vector<std::string> problems;
  auto sm = ctx->session->Manifest(*id, &problems);
  if (!sm.ok()) return Fail(sm.status());
  // Refuse here what every node would refuse later.
  const uint32_t max_life = sm->manifest().policy.max_request_seconds;
  if (*ttl > int64_t{max_life}) {
    return Fail(InvalidArgument("--ttl " + a.ttl + " exceeds the backup's policy maximum of " +
                                FormatSeconds(max_life)));
  }
  BoxKeyPair reply = NewBoxKeyPair();
  QuorumRequest q;
  q.operation = std::string(kOpRestore);
  q.backup_id = *id;
  q.backup_name = Printable(sm->manifest().artifact_name);
  q.manifest_hash = sm->Hash();
  q.requester_id = requester_id;
  q.requester_key = key.public_key();
  q.reply_key = reply.public_key;
  q.purpose = a.purpose;
  q.destination = a.destination;
  q.created_unix = a.valid_from != 0 ? a.valid_from : static_cast<int64_t>(std::time(nullptr));
  q.expires_unix = q.created_unix + *ttl;
  randombytes_buf(q.nonce.data(), q.nonce.size());
  auto sr = SignedRequest::Sign(q, key);
  if (!sr.ok()) return Fail(sr.status());
  // The one-time secret first (0600), then the signed manifest custodians
  // check the request against, then the request that points at both.
  if (Status st = WriteFileAtomic(a.out + ".key", reply.secret_key.span(), 0600); !st.ok()) {
    return Fail(st);
  }
  // 0600 too: whoever holds a request and its approvals can present them
  // (nodes take them only from the requester named in the request, but the
  // files are still nobody else's business).
  if (Status st = WriteFileAtomic(manifest_file, sm->encoded(), 0600); !st.ok()) return Fail(st);
  if (Status st = WriteSignedFile(a.out, kArmorRequest, sr->encoded(), a.armor); !st.ok()) {
    return Fail(st);
  }
  size_t kept = 0;
  if (a.submit) {
    problems.clear();
    kept = SubmitRequest(*ctx->session, *sr, &problems);
    for (const auto& p : problems) Warn(p);
  }
  if (a.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("request_id", RequestIdToText(sr->id()))
        .Field("backup_id", BackupIdToText(*id))
        .Field("backup_name", q.backup_name)
        .Field("requester", requester_id)
        .Field("purpose", q.purpose)
        .Field("destination", q.destination)
        .Field("created", Rfc3339(q.created_unix))
        .Field("expires", Rfc3339(q.expires_unix))
        .Field("request_file", a.out)
        .Field("manifest_file", manifest_file)
        .Field("key_file", a.out + ".key")
        .Field("armored", a.armor);
    if (a.submit) j.Field("submitted_to", uint64_t{kept});
    j.EndObject();
    std::printf("%s\n", j.str().c_str());
    return !a.submit || kept > 0 ? 0 : 1;
  }
  std::printf(
      "request %s\n  restore %s (%s) for %s\n  purpose: %s\n  valid %s .. %s\n"
      "  wrote %s and %s (send both to custodians) and %s (one-time secret, 0600: keep it)\n"
      "next: each custodian runs  qv approve --cluster CLUSTER.toml --key CUSTODIAN.key %s --out "
      "APPROVAL\n",
      RequestIdToText(sr->id()).c_str(), BackupIdToText(*id).c_str(), Shown(q.backup_name).c_str(),
      Shown(requester_id).c_str(), Shown(q.purpose).c_str(), Rfc3339(q.created_unix).c_str(),
      Rfc3339(q.expires_unix).c_str(), Shown(a.out).c_str(), Shown(manifest_file).c_str(),
      Shown(a.out + ".key").c_str(), Shown(a.out).c_str());
  if (!a.submit) return 0;
  std::printf(
      "submitted to %zu of %zu nodes: custodians see it with  qv pending  and approve with  qv "
      "approve --request %s\nthen:  qv restore run --cluster CLUSTER.toml --request %s --dest "
      "OUT\n",
      kept, ctx->session->config().nodes.size(), RequestIdToText(sr->id()).substr(0, 16).c_str(),
      Shown(a.out).c_str());
  return kept > 0 ? 0 : 1;
}

namespace {

// Whatever would make every node refuse an approval of `sr` signed by `key`
// (so it is not signed), given the backup's signed manifest.
Status CheckApprovable(const SignedRequest& sr, const SignedManifest& sm,
                       const ClusterConfig& cluster, const Signer& key, int64_t now) {
  // The request as every node will judge it (quorum/verify.h), at this
  // machine's clock with the nodes' default skew...
  VerifyInput in;
  // Restores and repairs are approved the same way; anything else no node
  // would take.
  in.operation = sr.request().operation == kOpRepair ? kOpRepair : kOpRestore;
  in.backup_id = sr.request().backup_id;
  in.manifest = &sm;
  in.requesters = &cluster.requesters;
  in.now = now;
  if (Status st = CheckRequest(sr, in); !st.ok()) {
    return PermissionDenied(st.message() + ": do not approve");
  }
  // ...and this key's own standing under the backup's policy.
  if (sm.manifest().policy.FindByKey(key.public_key()) == nullptr) {
    return PermissionDenied("--key is not a custodian of this backup's policy");
  }
  if (key.public_key() == sr.request().requester_key) {
    return PermissionDenied("--key is the requester's own key: a requester cannot approve");
  }
  return Status::Ok();
}

}  // namespace

int CmdApprove(const ApproveArgs& a) {
  if (a.request.empty() == a.request_id.empty()) {
    return FailUsage(InvalidArgument(
        "give a request file, or --request ID to take it from the cluster's nodes"));
  }
  if (a.request_id.empty() && a.out.empty()) {
    return FailUsage(InvalidArgument("--out: the approval file to write (the file flow)"));
  }
  if (!a.out.empty() && fs::exists(a.out)) return Fail(AlreadyExists(a.out + " already exists"));
  auto cluster = ClusterConfig::Load(a.cluster);
  if (!cluster.ok()) return Fail(cluster.status());
  auto key = KeyRef::Load(a.key);
  if (!key.ok()) return Fail(key.status().WithContext("--key"));
  // Through the cluster: the request, its votes so far and the backup's
  // signed manifest come from the nodes, and the vote goes back to them.
  std::unique_ptr<ClusterSession> session;
  Result<SignedRequest> sr = InvalidArgument("no request");
  Result<SignedManifest> sm = InvalidArgument("no manifest");
  if (!a.request_id.empty()) {
    auto opened = ClusterSession::Open(*cluster, key->channel());
    if (!opened.ok()) return Fail(opened.status());
    session = std::move(opened).value();
    auto fetched = FetchRequest(*session, a.request_id);
    if (!fetched.ok()) return Fail(fetched.status());
    sr = fetched->certificate.request;
    sm = std::move(fetched->manifest);
  } else {
    auto bytes = ReadSignedFile(a.request, kArmorRequest);
    if (!bytes.ok()) return Fail(bytes.status());
    sr = SignedRequest::Parse(*bytes);
    if (!sr.ok()) return Fail(sr.status().WithContext(a.request));
    if (sr->request().operation == kOpEnroll) {
      return CmdApproveEnrollment(*sr,
                                  {a.cluster, a.as, a.out, a.note, a.deny, a.yes, &*key, a.armor});
    }
    // The custodian reads the backup as its signed manifest describes it,
    // not as the requester does: the manifest must verify under the pinned
    // coordinator key and be exactly the one the request names.
    const std::string manifest_file = a.manifest.empty() ? a.request + ".manifest" : a.manifest;
    auto mbytes = ReadFileBytes(manifest_file, kMaxManifestSize);
    if (!mbytes.ok()) {
      return Fail(mbytes.status().WithContext(
          "the signed manifest (qv restore request writes it beside the request; --manifest)"));
    }
    sm = SignedManifest::Parse(*mbytes, &cluster->coordinator);
    if (!sm.ok()) return Fail(sm.status().WithContext(manifest_file));
  }
  const QuorumRequest& q = sr->request();
  if (sm->Hash() != q.manifest_hash || sm->manifest().backup_id != q.backup_id) {
    return Fail(PermissionDenied("the signed manifest is not the one the request names"));
  }
  const Manifest& m = sm->manifest();
  const Custodian* me = m.policy.FindByKey(key->public_key());
  const std::string as = !a.as.empty()   ? a.as
                         : me != nullptr ? me->id
                                         : fs::path(a.key).stem().string();
  if (me != nullptr && me->id != as) {
    return Fail(InvalidArgument("--as " + as + ": this key is custodian " + me->id));
  }
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  std::fprintf(
      stderr,
      "%s asks to %s backup %s\n"
      "  the backup, as its signed manifest says (verified: pinned coordinator key):\n"
      "    name:        %s\n    size:        %s in %zu file(s)\n"
      "    created:     %s\n    manifest:    sha256 %s\n"
      "  the request, as the requester wrote it:\n"
      "    backup name: %s%s\n    purpose:     %s\n    %s %s\n"
      "    requested:   %s\n    expires:     %s%s (lifetime %s, policy allows %s)\n"
      "    request id:  %s\n",
      Shown(q.requester_id).c_str(), Shown(q.operation).c_str(),
      BackupIdToText(q.backup_id).c_str(), Shown(m.artifact_name).c_str(),
      FormatBytes(m.plaintext_size).c_str(), m.files.size(), Rfc3339(m.created_unix).c_str(),
      HexEncode(q.manifest_hash).c_str(), Shown(q.backup_name).c_str(),
      q.backup_name == Printable(m.artifact_name) ? "" : "   (DIFFERS FROM THE MANIFEST)",
      Shown(q.purpose).c_str(), q.operation == kOpRepair ? "plan:       " : "destination:",
      q.destination.empty() ? "(none given)" : Shown(q.destination).c_str(),
      Rfc3339(q.created_unix).c_str(), Rfc3339(q.expires_unix).c_str(),
      now > q.expires_unix ? "  (EXPIRED)" : "",
      FormatSeconds(q.expires_unix - q.created_unix).c_str(),
      FormatSeconds(m.policy.max_request_seconds).c_str(), RequestIdToText(sr->id()).c_str());
  if (Status st = CheckApprovable(*sr, *sm, *cluster, key->signer(), now); !st.ok()) {
    return Fail(st.WithContext("nothing signed"));
  }
  if (!a.yes && ::isatty(STDIN_FILENO)) {
    std::fprintf(stderr, "%s as %s? [y/N] ", a.deny ? "Deny" : "Approve", Shown(as).c_str());
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "y" && answer != "Y" && answer != "yes") {
      std::fprintf(stderr, "nothing signed\n");
      return 1;
    }
  }
  auto ap = Approval::Sign(*sr, key->signer(), as, !a.deny, a.note, now);
  if (!ap.ok()) return Fail(ap.status().WithContext("nothing signed"));
  if (!a.out.empty()) {
    if (Status st = WriteSignedFile(a.out, kArmorApproval, ap->Encode(), a.armor); !st.ok()) {
      return Fail(st);
    }
  }
  // The vote goes to the nodes: through the cluster always; from the
  // file flow only a denial (a veto the requester cannot then leave out of
  // a certificate; the file stays for air-gapped sites).
  std::vector<std::string> problems;
  std::optional<size_t> sent;
  if (session != nullptr) {
    sent = PostVote(*session, *ap, q.backup_id, &problems);
    for (const auto& p : session->problems()) problems.insert(problems.begin(), p);
  } else if (a.deny) {
    auto denial_session = ClusterSession::Open(*cluster, key->channel());
    sent =
        denial_session.ok() ? (*denial_session)->PostDenial(Certificate{*sr, {*ap}}, &problems) : 0;
    if (!denial_session.ok()) problems.push_back(denial_session.status().message());
  }
  for (const auto& p : problems) Warn(p);
  const int rc = session != nullptr && sent == 0u ? 1 : 0;
  if (a.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("request_id", RequestIdToText(sr->id()))
        .Field("backup_id", BackupIdToText(q.backup_id))
        .Field("custodian", as)
        .Field("decision", a.deny ? "deny" : "approve")
        .Field("signed", Rfc3339(now))
        .Field("note", a.note)
        .Field("approval_file", a.out);
    if (sent) j.Field("posted_to", uint64_t{*sent});
    j.EndObject();
    std::printf("%s\n", j.str().c_str());
    return rc;
  }
  std::printf("%s signed %s of request %s%s%s\n", Shown(as).c_str(),
              a.deny ? "a denial" : "an approval", RequestIdToText(sr->id()).substr(0, 16).c_str(),
              a.out.empty() ? "" : ": ", a.out.empty() ? "" : Shown(a.out).c_str());
  if (session != nullptr) {
    std::printf("posted to %zu of %zu nodes\n", *sent, cluster->nodes.size());
  } else if (sent) {
    std::printf("the denial is recorded by %zu of %zu nodes%s\n", *sent, cluster->nodes.size(),
                *sent == 0 ? " (give the denial file to the operators)" : "");
  }
  return rc;
}

namespace {

// While a restore runs, SIGINT, SIGTERM and SIGHUP are taken by a thread
// of their own (blocked everywhere else) that removes the writer's staging
// folder and ends the process: Ctrl-C leaves no restored byte behind even
// where files are written named (no O_TMPFILE). Files still open go with
// the process. Restores the signal mask when done.
class StagingGuard {
 public:
  explicit StagingGuard(fs::path staging) : staging_(std::move(staging)) {
    sigemptyset(&set_);
    // SIGUSR2 only wakes the thread when the guard ends.
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR2}) sigaddset(&set_, s);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    thread_ = std::thread([this] {
      while (true) {
        int sig = 0;
        if (sigwait(&set_, &sig) != 0) continue;
        if (stop_.load()) return;
        if (sig == SIGUSR2) continue;
        if (!staging_.empty()) RemoveAllQuietly(staging_);
        std::fprintf(stderr, "qv: interrupted; nothing restored was left behind\n");
        std::_Exit(128 + sig);
      }
    });
  }
  ~StagingGuard() {
    stop_.store(true);
    pthread_kill(thread_.native_handle(), SIGUSR2);
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  fs::path staging_;
  sigset_t set_{}, old_{};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

int CmdRestoreRun(const RunArgs& a) {
  auto ctx = OpenCluster(a.cluster, a.key, "operator.key");
  if (!ctx.ok()) return Fail(ctx.status());
  // Without approval files, the votes custodians posted to the nodes.
  Result<Certificate> loaded = InvalidArgument("no certificate");
  if (!a.approvals.empty()) {
    loaded = LoadCertificate(a.request, a.approvals);
  } else {
    const bool file = fs::exists(a.request);
    std::string id = a.request;
    if (file) {
      auto c = LoadCertificate(a.request, {});
      if (!c.ok()) return Fail(c.status());
      id = RequestIdToText(c->request.id());
    }
    auto fetched = FetchRequest(*ctx->session, id);
    if (!fetched.ok()) {
      return Fail(fetched.status().WithContext("no --approval files given, and the nodes"));
    }
    loaded = std::move(fetched->certificate);
  }
  if (!loaded.ok()) return Fail(loaded.status());
  Certificate& cert = *loaded;
  const SignedRequest* sr = &cert.request;
  if (a.request_key.empty() && !fs::exists(a.request)) {
    return Fail(InvalidArgument(
        "--request-key: the request's one-time secret (REQUEST.key, beside the request file)"));
  }
  const std::string secret_file = a.request_key.empty() ? a.request + ".key" : a.request_key;
  auto secret = ReadSecretFile(secret_file, 32);
  if (!secret.ok()) return Fail(secret.status());
  BoxKeyPair reply{sr->request().reply_key, std::move(secret).value()};
  if (!BoxKeyMatches(reply)) {
    return Fail(InvalidArgument(secret_file + " is not the one-time key of " + a.request));
  }
  std::vector<std::string> notes;
  auto writer = NewFolderWriter(a.dest, &notes);
  for (const auto& n : notes) Warn(n);
  if (!writer.ok()) return Fail(writer.status());
  Progress progress("restore", !a.json);
  RestoreOptions opt;
  opt.progress = progress.fn();
  std::vector<std::string> problems;
  StagingGuard guard((*writer)->staging_dir());
  auto report = ctx->session->Restore(cert, reply, **writer, opt, &problems);
  progress.Clear();
  if (!report.ok()) return Fail(report.status());  // names every node's reason
  for (const auto& p : problems) Warn(p);
  for (const auto& p : report->problems) Warn(p);
  // The restore is done and verified: the one-time secret has no use left
  // but a retry, which would release the shares again to whoever holds it.
  const Status deleted = RemoveSecretFile(secret_file);
  if (!deleted.ok()) Warn("could not delete the one-time secret: " + deleted.ToString());
  const double mbps = report->plaintext_bytes / std::max(report->seconds, 1e-9) / 1e6;
  if (a.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("backup_id", BackupIdToText(sr->request().backup_id))
        .Field("request_id", RequestIdToText(sr->id()))
        .Field("dest", a.dest)
        .Field("bytes", report->plaintext_bytes)
        .Field("seconds", report->seconds)
        .Field("mb_per_s", mbps)
        .Field("reconstructed", report->reconstructed)
        .Field("request_key_deleted", deleted.ok());
    j.Key("problems").BeginArray();
    for (const auto& p : problems) j.String(p);
    for (const auto& p : report->problems) j.String(p);
    j.EndArray().EndObject();
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  std::printf("restored %s to %s under request %s: %s in %.2fs (%.0f MB/s), verified\n",
              BackupIdToText(sr->request().backup_id).c_str(), Shown(a.dest).c_str(),
              RequestIdToText(sr->id()).substr(0, 16).c_str(),
              FormatBytes(report->plaintext_bytes).c_str(), report->seconds, mbps);
  if (deleted.ok()) {
    std::printf("deleted %s (the request's one-time secret: spent, no longer needed)\n",
                Shown(secret_file).c_str());
  }
  return 0;
}

}  // namespace qv
