#include "node/share_recovery.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "base/wire.h"

namespace qv {

namespace {
constexpr size_t kMaxNodeId = 256;
}  // namespace

Bytes EncodeRecoveryStart(const RecoveryPlan& p) {
  WireWriter w;
  w.Fixed(p.id).U32(static_cast<uint32_t>(p.helpers.size()));
  for (size_t i = 0; i < p.helpers.size(); ++i) {
    w.Str(p.helpers[i]).U32(i < p.helper_x.size() ? p.helper_x[i] : 0);
  }
  w.Str(p.target);
  return w.Take();
}

Result<RecoveryPlan> DecodeRecoveryStart(ByteSpan data) {
  WireReader r(data);
  RecoveryPlan p;
  QV_ASSIGN_OR_RETURN(p.id, r.Fixed<16>());
  QV_ASSIGN_OR_RETURN(uint32_t n, r.U32());
  if (n == 0 || n > kMaxShareHolders) return InvalidArgument("helper count out of range");
  std::set<std::string> seen;
  std::set<uint32_t> xs;
  for (uint32_t i = 0; i < n; ++i) {
    QV_ASSIGN_OR_RETURN(std::string node, r.Str(kMaxNodeId));
    QV_ASSIGN_OR_RETURN(uint32_t x, r.U32());
    if (!seen.insert(node).second || x == 0 || !xs.insert(x).second) {
      return InvalidArgument("helpers repeat or have index 0");
    }
    p.helpers.push_back(std::move(node));
    p.helper_x.push_back(x);
  }
  QV_ASSIGN_OR_RETURN(p.target, r.Str(kMaxNodeId));
  if (seen.count(p.target)) return InvalidArgument("the new holder cannot be a helper");
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  return p;
}

Bytes EncodeRecoveryValue(const RecoveryId& id, const SecretBytes& value) {
  // A transient copy on the way into a Noise message; the caller's message
  // buffer is the only other place it exists, and the channel encrypts it.
  Bytes out(id.begin(), id.end());
  out.insert(out.end(), value.data(), value.data() + value.size());
  return out;
}

Result<std::pair<RecoveryId, SecretBytes>> DecodeRecoveryValue(ByteSpan data) {
  if (data.size() != 16 + kScalarSize) return InvalidArgument("recovery value size");
  RecoveryId id;
  std::memcpy(id.data(), data.data(), 16);
  SecretBytes v(kScalarSize);
  std::memcpy(v.data(), data.data() + 16, kScalarSize);
  return std::make_pair(id, std::move(v));
}

void ShareRecoveries::Expire(int64_t now) {
  for (auto it = states_.begin(); it != states_.end();) {
    it = it->second.plan.expires < now ? states_.erase(it) : std::next(it);
  }
}

Status ShareRecoveries::Start(const RecoveryPlan& plan, const Share* own, int64_t now) {
  const auto me = std::find(plan.helpers.begin(), plan.helpers.end(), self_);
  const bool target = plan.target == self_;
  if (me == plan.helpers.end() && !target) {
    return PermissionDenied("this node is neither a helper nor the new holder");
  }
  State st;
  st.plan = plan;
  st.target = target;
  if (!target) {
    if (own == nullptr) return FailedPrecondition("a helper needs its share");
    const size_t i = static_cast<size_t>(me - plan.helpers.begin());
    if (own->x != plan.helper_x[i]) return InvalidArgument("this node's share index differs");
    QV_ASSIGN_OR_RETURN(SecretBytes term, LagrangeTerm(*own, plan.helper_x, plan.fragment + 1));
    QV_ASSIGN_OR_RETURN(st.outgoing, SplitIntoSummands(term, plan.helpers.size()));
  }
  std::lock_guard<std::mutex> lock(mu_);
  Expire(now);
  if (!states_.count(plan.id) && states_.size() >= kMaxRecoveries) {
    return FailedPrecondition(std::to_string(kMaxRecoveries) + " share recoveries in progress");
  }
  states_[plan.id] = std::move(st);
  return Status::Ok();
}

Result<std::vector<std::pair<std::string, SecretBytes>>> ShareRecoveries::TakeOutgoing(
    const RecoveryId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = states_.find(id);
  if (it == states_.end() || it->second.target) return NotFound("no such share recovery here");
  State& st = it->second;
  if (st.dealt) return FailedPrecondition("summands already dealt");
  st.dealt = true;
  std::vector<std::pair<std::string, SecretBytes>> out;
  for (size_t i = 0; i < st.plan.helpers.size(); ++i) {
    if (st.plan.helpers[i] == self_) {
      st.in[self_] = std::move(st.outgoing[i]);  // its own summand stays here
    } else {
      out.emplace_back(st.plan.helpers[i], std::move(st.outgoing[i]));
    }
  }
  st.outgoing.clear();
  return out;
}

Status ShareRecoveries::Known(const RecoveryId& id, const std::string& from, bool want_target,
                              int64_t now, State** out) {
  Expire(now);
  auto it = states_.find(id);
  if (it == states_.end() || it->second.target != want_target) {
    return NotFound("no such share recovery here");
  }
  const auto& h = it->second.plan.helpers;
  if (std::find(h.begin(), h.end(), from) == h.end() || from == self_) {
    return PermissionDenied(from + " is not a helper of this share recovery");
  }
  if (it->second.in.count(from)) return AlreadyExists(from + " already sent its value");
  *out = &it->second;
  return Status::Ok();
}

Status ShareRecoveries::AddSummand(const RecoveryId& id, const std::string& from, SecretBytes value,
                                   int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  State* st = nullptr;
  QV_RETURN_IF_ERROR(Known(id, from, /*want_target=*/false, now, &st));
  st->in[from] = std::move(value);
  return Status::Ok();
}

Result<std::pair<std::string, SecretBytes>> ShareRecoveries::TakePartial(const RecoveryId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = states_.find(id);
  if (it == states_.end() || it->second.target) return NotFound("no such share recovery here");
  State& st = it->second;
  if (!st.dealt || st.in.size() != st.plan.helpers.size()) {
    return FailedPrecondition("have " + std::to_string(st.in.size()) + " of " +
                              std::to_string(st.plan.helpers.size()) + " summands");
  }
  std::vector<SecretBytes> parts;
  for (auto& [from, v] : st.in) parts.push_back(std::move(v));
  auto sum = SumScalars(parts);
  std::string target = st.plan.target;
  states_.erase(it);
  QV_RETURN_IF_ERROR(sum.status());
  return std::make_pair(std::move(target), std::move(sum).value());
}

Status ShareRecoveries::AddPartial(const RecoveryId& id, const std::string& from, SecretBytes value,
                                   int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  State* st = nullptr;
  QV_RETURN_IF_ERROR(Known(id, from, /*want_target=*/true, now, &st));
  st->in[from] = std::move(value);
  return Status::Ok();
}

Result<Share> ShareRecoveries::TakeShare(const RecoveryId& id, const BackupId& backup,
                                         uint32_t fragment) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = states_.find(id);
  if (it == states_.end() || !it->second.target) return NotFound("no such share recovery here");
  State& st = it->second;
  if (st.plan.backup != backup || st.plan.fragment != fragment) {
    return InvalidArgument("the share recovery is for another backup or fragment");
  }
  if (st.in.size() != st.plan.helpers.size()) {
    return FailedPrecondition("have " + std::to_string(st.in.size()) + " of " +
                              std::to_string(st.plan.helpers.size()) + " partial sums");
  }
  std::vector<SecretBytes> parts;
  for (auto& [from, v] : st.in) parts.push_back(std::move(v));
  states_.erase(it);
  QV_ASSIGN_OR_RETURN(SecretBytes y, SumScalars(parts));
  return Share{fragment + 1, std::move(y)};
}

size_t ShareRecoveries::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return states_.size();
}

}  // namespace qv
