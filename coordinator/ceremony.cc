#include "coordinator/ceremony.h"

#include <algorithm>
#include <map>

#include "base/text.h"
#include "node/pending.h"

namespace qv {

namespace {

// Sends `r` to every reachable node; counts those that answered ok.
size_t Broadcast(ClusterSession& session, const Request& r, std::vector<std::string>* problems) {
  size_t kept = 0;
  for (size_t i = 0; i < session.config().nodes.size(); ++i) {
    NodeCaller* c = session.caller(i);
    if (c == nullptr) continue;  // named in session.problems()
    auto resp = c->Call(r);
    Status st = resp.ok() ? resp->ToStatus() : resp.status();
    if (st.ok()) {
      ++kept;
    } else {
      problems->push_back(session.config().nodes[i].id + ": " + st.message());
    }
  }
  return kept;
}

}  // namespace

size_t SubmitRequest(ClusterSession& session, const SignedRequest& request,
                     std::vector<std::string>* problems) {
  Request r;
  r.op = Op::kSubmitRequest;
  r.backup_id = request.request().backup_id;
  r.payload = request.encoded();
  return Broadcast(session, r, problems);
}

size_t PostVote(ClusterSession& session, const Approval& vote, const BackupId& backup,
                std::vector<std::string>* problems) {
  Request r;
  r.op = Op::kPostApproval;
  r.backup_id = backup;
  r.payload = vote.Encode();
  return Broadcast(session, r, problems);
}

Result<std::vector<PendingView>> ListPending(ClusterSession& session, const RequestId* only,
                                             std::vector<std::string>* problems) {
  std::map<RequestId, PendingView> merged;
  size_t answered = 0;
  const size_t known_problems = problems->size();
  for (size_t i = 0; i < session.config().nodes.size(); ++i) {
    NodeCaller* c = session.caller(i);
    if (c == nullptr) continue;
    const std::string& node = session.config().nodes[i].id;
    Request r;
    r.op = Op::kListPending;
    if (only != nullptr) r.payload.assign(only->begin(), only->end());
    auto resp = c->Call(r);
    Status st = resp.ok() ? resp->ToStatus() : resp.status();
    if (!st.ok()) {
      problems->push_back(node + ": " + st.message());
      continue;
    }
    auto list = DecodePendingList(resp->payload);
    if (!list.ok()) {
      problems->push_back(node + ": " + list.status().message());
      continue;
    }
    ++answered;
    for (const auto& e : *list) {
      auto sr = SignedRequest::Parse(e.request);  // checks the requester's signature
      if (!sr.ok()) {
        problems->push_back(node + ": a pending request does not verify: " + sr.status().message());
        continue;
      }
      if (only != nullptr && sr->id() != *only) continue;
      auto [it, fresh] = merged.try_emplace(sr->id(), PendingView{*sr, e.received, {}, 0});
      PendingView& v = it->second;
      v.received = std::min(v.received, e.received);
      ++v.nodes;
      for (const auto& ab : e.approvals) {
        auto a = Approval::Parse(ab);
        if (!a.ok() || !a->VerifySignature().ok() || a->request_id != sr->id()) {
          problems->push_back(node + ": a posted vote does not verify; ignored");
          continue;
        }
        auto same = std::find_if(v.approvals.begin(), v.approvals.end(), [&](const Approval& x) {
          return x.custodian_key == a->custodian_key;
        });
        if (same == v.approvals.end()) {
          v.approvals.push_back(*a);
        } else if (!a->approve) {
          *same = *a;  // a denial anywhere wins
        }
      }
    }
  }
  if (answered == 0) {
    std::string why = "no node answered";
    for (size_t i = known_problems; i < problems->size(); ++i) why += "; " + (*problems)[i];
    for (const auto& p : session.problems()) why += "; " + p;
    return IoError(why);
  }
  std::vector<PendingView> out;
  for (auto& [id, v] : merged) {
    std::stable_sort(v.approvals.begin(), v.approvals.end(),
                     [](const Approval& a, const Approval& b) { return !a.approve && b.approve; });
    out.push_back(std::move(v));
  }
  std::stable_sort(out.begin(), out.end(), [](const PendingView& a, const PendingView& b) {
    return a.received < b.received;
  });
  return out;
}

}  // namespace qv
