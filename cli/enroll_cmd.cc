#include "cli/enroll_cmd.h"

#include <sodium.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "base/file_util.h"
#include "cli/cli_util.h"
#include "configs/local_cluster.h"
#include "quorum/armor.h"
#include "quorum/enrollment.h"

namespace qv {

namespace fs = std::filesystem;

EnrollCommands AddEnrollCommands(CLI::App& cluster, AddNodeArgs& an, EnrollRequestArgs& rq,
                                 EnrollRunArgs& rr) {
  auto* add = cluster.add_subcommand(
      "add-node", "Create a new node's key and files in a local cluster folder, to enroll");
  add->add_option("--dir", an.dir, "cluster folder (from qv cluster init)")->required();
  add->add_option("--id", an.id, "new node id")->required();
  add->add_option("--site", an.site, "site it stands in (one the cluster file lists)")->required();
  add->add_option("--host", an.host, "address it listens on")->capture_default_str();
  add->add_option("--port", an.port, "port it listens on")
      ->check(CLI::Range(1024, 65535))
      ->required();
  add->footer(
      "Writes DIR/nodes/ID/{node.key, master.key, node.toml}; the cluster file is unchanged\n"
      "until a quorum enrolls the node (qv cluster enroll request / approve / run).");

  auto* enroll = cluster.add_subcommand(
      "enroll", "Add a node key to the cluster, under a quorum of custodians");
  enroll->require_subcommand(1);
  enroll->footer(
      "Nodes trust only the keys the cluster file pins. A new node (a replacement for a\n"
      "decommissioned one, a spare for repairs) joins through the restore ceremony: a requester\n"
      "signs a request naming the node's id, site, address and key and the membership it joins,\n"
      "the cluster's custodians approve it (quorum from the cluster file), and every node checks\n"
      "the certificate before it pins the key. The cluster file then carries the certificate,\n"
      "so a node started later checks it too; a node whose file lists a node no quorum enrolled\n"
      "refuses to start.");
  auto* req = enroll->add_subcommand("request", "Sign a request to enroll a node");
  req->add_option("--cluster", rq.cluster, "cluster file")->required();
  req->add_option("--key", rq.key, "requester key (default: operator.key beside the cluster file)");
  req->add_option("--node-id", rq.node_id, "the new node's id")->required();
  req->add_option("--site", rq.site, "its site (one the cluster file lists)")->required();
  req->add_option("--address", rq.address, "HOST:PORT it listens on")->required();
  req->add_option("--node-key", rq.node_key,
                  "its public key (ed25519:HEX, as qv keygen prints) or its key file")
      ->required();
  req->add_option("--purpose", rq.purpose, "why, in words custodians will read")->required();
  req->add_option("--ttl", rq.ttl, "how long custodians have (e.g. 30m, 4h, 1d)")
      ->capture_default_str();
  req->add_option("--out", rq.out, "request file to write")->required();
  req->add_flag("--armor", rq.armor, "write it as ASCII armor (to paste into a ticket)");
  auto* run = enroll->add_subcommand(
      "run", "Present an enrollment and its approvals to every node; update the cluster file");
  run->add_option("--cluster", rr.cluster, "cluster file")->required();
  run->add_option("--key", rr.key,
                  "key to reach the nodes as (default: operator.key beside the cluster file)");
  run->add_option("--request", rr.request, "request file from qv cluster enroll request")
      ->required();
  run->add_option("--approval", rr.approvals, "approval files from qv approve (repeatable)")
      ->required();
  run->add_option("--out", rr.out, "cluster file to write (default: the one given, replaced)");
  run->footer(
      "Writes the cluster file only when no reachable node refused. A node that was down\n"
      "checks the certificate in the file when it starts. Copy the new file to every machine\n"
      "that runs a node or qv; start the new node with it.");
  return {add, req, run};
}

int CmdAddNode(const AddNodeArgs& a) {
  auto cluster = ClusterConfig::Load(fs::path(a.dir) / "cluster.toml");
  if (!cluster.ok()) return Fail(cluster.status());
  if (std::find(cluster->sites.begin(), cluster->sites.end(), a.site) == cluster->sites.end()) {
    return Fail(InvalidArgument("--site " + a.site + " is not a site of the cluster"));
  }
  auto node = InitLocalNode(a.dir, a.id, a.site, a.host, a.port);
  if (!node.ok()) return Fail(node.status());
  std::printf(
      "node %s: %s\nnext: qv cluster enroll request --cluster %s --node-id %s --site %s "
      "--address %s:%u --node-key %s --purpose WHY --out enroll.req\n",
      Shown(node->id).c_str(), PublicKeyToText(node->public_key).c_str(),
      Shown((fs::path(a.dir) / "cluster.toml").string()).c_str(), Shown(node->id).c_str(),
      Shown(node->site).c_str(), Shown(node->host).c_str(), node->port,
      PublicKeyToText(node->public_key).c_str());
  return 0;
}

int CmdEnrollRequest(const EnrollRequestArgs& a) {
  if (fs::exists(a.out)) return Fail(AlreadyExists(a.out + " already exists"));
  auto cluster = ClusterConfig::Load(a.cluster);
  if (!cluster.ok()) return Fail(cluster.status());
  if (auto chain = CheckEnrollments(*cluster); !chain.ok()) return Fail(chain.status());
  auto key = KeyRef::Load(KeyBeside(a.cluster, a.key, "operator.key"));
  if (!key.ok()) return Fail(key.status().WithContext("--key"));
  const Principal* me = nullptr;
  for (const auto& r : cluster->requesters) {
    if (r.public_key == key->public_key()) me = &r;
  }
  if (me == nullptr) {
    return Fail(PermissionDenied("--key is not a requester listed in the cluster file"));
  }
  NodeEntry node;
  node.id = a.node_id;
  node.site = a.site;
  const size_t colon = a.address.rfind(':');
  int port = 0;
  try {
    port = colon == std::string::npos ? 0 : std::stoi(a.address.substr(colon + 1));
  } catch (...) {
    port = 0;
  }
  if (colon == std::string::npos || colon == 0 || port < 1 || port > 65535) {
    return Fail(InvalidArgument("--address " + a.address + ": expected HOST:PORT"));
  }
  node.host = a.address.substr(0, colon);
  node.port = static_cast<uint16_t>(port);
  if (auto pk = PublicKeyFromText(a.node_key); pk.ok()) {
    node.public_key = *pk;
  } else if (auto file = SigningKey::Load(a.node_key); file.ok()) {
    node.public_key = (*file)->public_key();
  } else {
    return Fail(InvalidArgument("--node-key: neither a public key (ed25519:HEX) nor a key file: " +
                                pk.status().message()));
  }
  auto ttl = ParseDuration(a.ttl);
  if (!ttl.ok()) return Fail(ttl.status().WithContext("--ttl"));
  if (*ttl > int64_t{cluster->max_request_seconds}) {
    return Fail(InvalidArgument("--ttl " + a.ttl + " exceeds the cluster's maximum of " +
                                FormatSeconds(cluster->max_request_seconds)));
  }
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  QuorumRequest q = EnrollmentRequest(*cluster, node, *me, a.purpose, now, now + *ttl);
  randombytes_buf(q.nonce.data(), q.nonce.size());
  auto sr = SignedRequest::Sign(q, key->signer());
  if (!sr.ok()) return Fail(sr.status());
  // Checked as every node will check it, so a request no node would take
  // is not sent to custodians.
  if (auto n = CheckEnrollmentRequest(*sr, *cluster); !n.ok()) return Fail(n.status());
  if (Status st = WriteSignedFile(a.out, kArmorRequest, sr->encoded(), a.armor); !st.ok()) {
    return Fail(st);
  }
  std::printf(
      "request %s\n  enroll %s\n  purpose: %s\n  valid %s .. %s\n  wrote %s (send it to the "
      "custodians)\nnext: each custodian runs  qv approve --cluster CLUSTER.toml --key "
      "CUSTODIAN.key %s --out APPROVAL\n",
      RequestIdToText(sr->id()).c_str(), Shown(q.destination).c_str(), Shown(q.purpose).c_str(),
      Rfc3339(q.created_unix).c_str(), Rfc3339(q.expires_unix).c_str(), Shown(a.out).c_str(),
      Shown(a.out).c_str());
  return 0;
}

int CmdApproveEnrollment(const SignedRequest& sr, const ApproveEnrollmentArgs& a) {
  if (fs::exists(a.out)) return Fail(AlreadyExists(a.out + " already exists"));
  auto cluster = ClusterConfig::Load(a.cluster);
  if (!cluster.ok()) return Fail(cluster.status());
  const KeyRef* key = a.key;
  const QuorumRequest& q = sr.request();
  const Principal* me = nullptr;
  for (const auto& c : cluster->custodians) {
    if (c.public_key == key->public_key()) me = &c;
  }
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  std::fprintf(stderr,
               "%s asks to enroll a node in cluster %s (%zu nodes now)\n"
               "  %s\n  purpose:     %s\n  requested:   %s\n  expires:     %s%s\n"
               "  request id:  %s\n",
               Shown(q.requester_id).c_str(), Shown(cluster->name).c_str(), cluster->nodes.size(),
               Shown(q.destination).c_str(), Shown(q.purpose).c_str(),
               Rfc3339(q.created_unix).c_str(), Rfc3339(q.expires_unix).c_str(),
               now > q.expires_unix ? "  (EXPIRED)" : "", RequestIdToText(sr.id()).c_str());
  // What every node will check, at this machine's clock, before signing.
  Status check = CheckEnrollmentRequest(sr, *cluster).status();
  VerifyInput in;
  in.operation = kOpEnroll;
  in.now = now;
  if (check.ok()) check = CheckRequester(q, cluster->requesters);
  if (check.ok()) check = CheckTimes(q, cluster->max_request_seconds, in);
  if (check.ok() && me == nullptr) {
    check = PermissionDenied("--key is not a custodian in the cluster file");
  }
  if (check.ok() && key->public_key() == q.requester_key) {
    check = PermissionDenied("--key is the requester's own key: a requester cannot approve");
  }
  if (!check.ok()) return Fail(check.WithContext("do not approve; nothing signed"));
  if (!a.yes && ::isatty(STDIN_FILENO)) {
    std::fprintf(stderr, "%s as %s? [y/N] ", a.deny ? "Deny" : "Approve", Shown(me->id).c_str());
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "y" && answer != "Y" && answer != "yes") {
      std::fprintf(stderr, "nothing signed\n");
      return 1;
    }
  }
  auto ap = Approval::Sign(sr, key->signer(), me->id, !a.deny, a.note, now);
  if (!ap.ok()) return Fail(ap.status().WithContext("nothing signed"));
  if (Status st = WriteSignedFile(a.out, kArmorApproval, ap->Encode(), a.armor); !st.ok()) {
    return Fail(st);
  }
  std::printf("%s signed %s of enrollment %s: %s\n", Shown(me->id).c_str(),
              a.deny ? "a denial" : "an approval", RequestIdToText(sr.id()).substr(0, 16).c_str(),
              Shown(a.out).c_str());
  return 0;
}

int CmdEnrollRun(const EnrollRunArgs& a) {
  auto cluster = ClusterConfig::Load(a.cluster);
  if (!cluster.ok()) return Fail(cluster.status());
  if (auto chain = CheckEnrollments(*cluster); !chain.ok()) return Fail(chain.status());
  auto cert = LoadCertificate(a.request, a.approvals);
  if (!cert.ok()) return Fail(cert.status());
  // Checked here first at this machine's clock: a certificate no node
  // would take is not sent.
  VerifyInput in;
  in.operation = kOpEnroll;
  in.now = static_cast<int64_t>(std::time(nullptr));
  if (auto v = VerifyEnrollment(*cert, *cluster, in); !v.ok()) {
    return Fail(v.status().WithContext("nothing enrolled"));
  }
  auto next = ApplyEnrollment(*cluster, cert->Encode());
  if (!next.ok()) return Fail(next.status().WithContext("nothing enrolled"));
  auto ctx = OpenCluster(a.cluster, a.key, "operator.key");
  if (!ctx.ok()) return Fail(ctx.status());
  size_t enrolled = 0, refused = 0;
  for (const auto& o : ctx->session->PostEnrollment(*cert)) {
    if (o.status.ok()) {
      ++enrolled;
      std::printf("  %-12s %s\n", Shown(o.node).c_str(), Shown(o.message).c_str());
    } else {
      refused += o.status.code() == StatusCode::kIoError ? 0 : 1;
      std::printf("  %-12s %s\n", Shown(o.node).c_str(), Shown(o.status.message()).c_str());
    }
  }
  if (refused > 0) {
    return Fail(PermissionDenied(std::to_string(refused) +
                                 " node(s) refused the enrollment; the cluster file is unchanged"));
  }
  const std::string out = a.out.empty() ? a.cluster : a.out;
  if (Status st = WriteFileAtomic(out, AsBytes(next->ToToml()), 0644); !st.ok()) return Fail(st);
  const NodeEntry& added = next->nodes.back();
  std::printf(
      "node %s enrolled by %zu of %zu nodes (the others check it when they start); wrote %s\n"
      "next: start node %s with this cluster file; then it can take fragments (qv repair request "
      "--decommission NODE)\n",
      Shown(added.id).c_str(), enrolled, cluster->nodes.size(), Shown(out).c_str(),
      Shown(added.id).c_str());
  return 0;
}

}  // namespace qv
