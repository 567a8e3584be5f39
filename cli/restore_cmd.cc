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

RestoreCommands AddRestoreCommands(CLI::App& app, RestoreArgs& local, RequestArgs& rq,
                                   RunArgs& rr) {
  auto* restore =
      app.add_subcommand("restore", "Restore a backup from any t shares and k fragments");
  auto* r_local =
      restore->add_option("--local", local.local, "development layout folder used at backup");
  auto* r_cluster =
      restore->add_option("--cluster", local.cluster, "cluster file: restore from its nodes");
  r_local->excludes(r_cluster);
  restore->add_option("--key", local.key,
                      "coordinator key (default: coordinator.key beside the cluster file)");
  restore->add_option("--backup", local.backup, "backup id (32 hex characters)");
  restore->add_option("--dest", local.dest, "new folder to restore into (must not exist)");
  restore->require_subcommand(0, 1);

  auto* r_request = restore->add_subcommand(
      "request", "Ask for a restore: a signed request custodians can approve");
  r_request->add_option("--cluster", rq.cluster, "cluster file")->required();
  r_request->add_option("--key", rq.key,
                        "requester key (default: operator.key beside the cluster file)");
  r_request->add_option("--backup", rq.backup, "backup id (32 hex characters)")->required();
  r_request->add_option("--purpose", rq.purpose, "why, in words custodians will read")->required();
  r_request->add_option("--destination", rq.destination, "where the restore will land (label)");
  r_request->add_option("--ttl", rq.ttl, "how long custodians have (e.g. 30m, 4h, 1d)")
      ->capture_default_str();
  r_request->add_option("--valid-from", rq.valid_from,
                        "start of validity, unix seconds (default: now)");
  r_request
      ->add_option("--out", rq.out, "request file to write; its one-time secret goes to OUT.key")
      ->required();
  r_request->add_flag("--json", rq.json, "machine-readable output");
  r_request->add_flag("--armor", rq.armor,
                      "write the request as ASCII armor, to paste into a ticket or chat");
  r_request->add_flag("--submit", rq.submit,
                      "also post it to the nodes: custodians find it with qv pending");
  r_request->footer(
      "Writes OUT (public: give it to custodians) and OUT.key (0600: the one-time secret that\n"
      "opens released shares; never send it). Example:\n"
      "  qv restore request --cluster cl/cluster.toml --backup ID --purpose 'DR drill' --out "
      "req\n" +
      std::string(kConcepts));

  auto* r_run = restore->add_subcommand(
      "run", "Present a request and its approvals to the nodes and restore");
  r_run->add_option("--cluster", rr.cluster, "cluster file")->required();
  r_run->add_option("--key", rr.key,
                    "identity for the node channels (default: operator.key beside the cluster)");
  r_run
      ->add_option("--request", rr.request,
                   "request file from qv restore request, or (with --request-key) its id")
      ->required();
  r_run->add_option("--request-key", rr.request_key, "its one-time secret (default: REQUEST.key)");
  r_run->add_option("--approval", rr.approvals,
                    "approval files from qv approve (repeatable; none: the approvals custodians "
                    "posted to the nodes)");
  r_run->add_option("--dest", rr.dest, "new folder to restore into (must not exist)")->required();
  r_run->add_flag("--json", rr.json, "machine-readable output");
  r_run->footer(
      "Every node checks the certificate itself (quorum of distinct custodians from the backup's\n"
      "signed policy, none of them the requester; unexpired; never used before) and releases its\n"
      "share sealed to the request's one-time key. Refusals are printed with each node's reason.");
  restore->add_option("--signer", local.signer,
                      "require the manifest to be signed by this public key");
  restore->add_flag("--json", local.json, "machine-readable output");
  restore->footer(
      "Bad or missing fragments and shares are named and routed around; nothing appears at\n"
      "--dest unless every file matches its signed SHA-256.");
  return {restore, r_request, r_run};
}

int CmdRestore(const RestoreArgs& a) {
  if (a.backup.empty() || a.dest.empty()) {
    std::fprintf(stderr,
                 "qv: usage: qv restore --local DIR --backup ID --dest OUT, or\n"
                 "  qv restore request ... / qv restore run ... (see --help)\n");
    return 2;
  }
  if (Status s = LocalOrCluster(a.local, a.cluster); !s.ok()) return FailUsage(s);
  Result<BackupId> id = BackupIdFromText(a.backup);
  if (a.cluster.empty() && fs::is_directory(a.local)) {
    auto src = OpenManifests({a.local, "", ""});
    if (src.ok()) id = ResolveBackup(a.backup, *src);
  }
  if (!id.ok()) return Fail(id.status().WithContext("--backup"));
  std::optional<PublicKey> expected;
  if (!a.signer.empty()) {
    auto pk = PublicKeyFromText(a.signer);
    if (!pk.ok()) return Fail(pk.status().WithContext("--signer"));
    expected = *pk;
  }
  std::vector<std::string> problems;
  Progress progress("restore", !a.json);
  RestoreOptions opt;
  opt.progress = progress.fn();
  Result<RestoreReport> report = Internal("no source");
  std::optional<SignedManifest> sm;
  if (!a.cluster.empty()) {
    return Fail(PermissionDenied(
        "a cluster restore needs a quorum certificate: qv restore request, qv approve (by the "
        "custodians), then qv restore run"));
  } else {
    if (!fs::is_directory(a.local)) return Fail(NotFound(a.local + ": no such folder"));
    auto store = LocalStore::Open(a.local);
    if (!store.ok()) return Fail(store.status());
    auto m = (*store)->LoadManifest(*id, expected ? &*expected : nullptr, &problems);
    if (!m.ok()) return Fail(m.status());
    sm = std::move(m).value();
    std::vector<std::string> notes;
    auto writer = NewFolderWriter(a.dest, &notes);
    for (const auto& n : notes) Warn(n);
    if (!writer.ok()) return Fail(writer.status());
    auto sources = (*store)->OpenSources(*sm, &problems);
    auto shares = (*store)->ReadShares(*sm, &problems);
    report = RunRestore(*sm, std::move(sources), std::move(shares), **writer, opt);
    progress.Clear();
  }
  for (const auto& p : problems) Warn(p);
  if (!report.ok()) return Fail(report.status());
  const Manifest& m = sm->manifest();
  const double mbps = report->plaintext_bytes / std::max(report->seconds, 1e-9) / 1e6;
  if (a.json) {
    JsonWriter j;
    j.BeginObject()
        .Field("backup_id", BackupIdToText(m.backup_id))
        .Field("dest", a.dest)
        .Field("files", uint64_t{m.files.size()})
        .Field("bytes", report->plaintext_bytes)
        .Field("seconds", report->seconds)
        .Field("mb_per_s", mbps)
        .Field("reconstructed", report->reconstructed)
        .Field("signer", PublicKeyToText(sm->signer()));
    j.Key("fragments_used").BeginArray();
    for (uint32_t f : report->fragments_used) j.UInt(f);
    j.EndArray().Key("problems").BeginArray();
    for (const auto& p : problems) j.String(p);
    for (const auto& p : report->problems) j.String(p);
    j.EndArray().EndObject();
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  for (const auto& p : report->problems) Warn(p);
  std::string used;
  for (uint32_t f : report->fragments_used) used += (used.empty() ? "" : ",") + std::to_string(f);
  std::printf(
      "restored %s to %s: %zu files, %s in %.2fs (%.0f MB/s)\n"
      "  fragments used: %s%s; every unit, chunk and file verified against the manifest\n"
      "  manifest signed by %s\n",
      Shown(m.artifact_name).c_str(), Shown(a.dest).c_str(), m.files.size(),
      FormatBytes(report->plaintext_bytes).c_str(), report->seconds, mbps, used.c_str(),
      report->reconstructed ? " (missing data rebuilt from parity)" : "",
      PublicKeyToText(sm->signer()).c_str());
  return 0;
}

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
