#include "cli/approve_cmd.h"

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
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
#include "crypto/identity.h"
#include "quorum/request.h"
#include "quorum/verify.h"

namespace fs = std::filesystem;

namespace qv {

CLI::App* AddApproveCommand(CLI::App& app, ApproveArgs& a) {
  auto* approve = app.add_subcommand("approve", "Show a restore request and sign an approval");
  approve
      ->add_option("--cluster", a.cluster,
                   "cluster file: the pinned coordinator key the manifest must verify under, "
                   "and the requesters")
      ->required();
  approve
      ->add_option("--key", a.key,
                   "your custodian key: a file, or pkcs11:token=...;object=... (a key in a "
                   "hardware token)")
      ->required();
  approve->footer(std::string(kConcepts));
  approve->add_option("--as", a.as, "custodian id (default: the policy's name for --key)");
  approve->add_option("file", a.request, "request file (the file flow)");
  approve->add_option("--request", a.request_id,
                      "a request id (or 8+ characters of it) pending on the nodes (qv pending): "
                      "fetched from them, and the vote posted back");
  approve->add_option("--manifest", a.manifest,
                      "the backup's signed manifest (default: REQUEST.manifest, written by qv "
                      "restore request)");
  approve->add_option("--out", a.out,
                      "approval file to write (required for a request file; optional with "
                      "--request)");
  approve->add_flag("--deny", a.deny, "sign a refusal instead");
  approve->add_flag("--armor", a.armor, "write the approval as ASCII armor (to paste)");
  approve->add_flag("--json", a.json, "machine-readable output (what was signed and posted)");
  approve->add_option("--note", a.note, "a remark recorded with the decision");
  approve->add_flag("--yes", a.yes, "do not ask for confirmation on a terminal");
  return approve;
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

}  // namespace qv
