// A node's side of share recovery (crypto/vss.h: the enrollment protocol
// of Nojoumian, Stinson and Grainger, as Laing and Stinson refine it): the
// recoveries this node takes part in, as a helper (its summands out, the
// other helpers' summands in) or as the new holder (the helpers' partial
// sums in). No I/O: NodeService moves the values over node-to-node Noise
// channels and decides who may start what.
//
// Bounded for peers that flood: at most kMaxRecoveries at once (the
// oldest expired ones dropped first), one summand or partial per helper.
// Every value is secret (SecretBytes) and wiped when the recovery ends.
// Thread-safe.
#ifndef QV_NODE_SHARE_RECOVERY_H_
#define QV_NODE_SHARE_RECOVERY_H_

#include <array>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/vss.h"
#include "manifest/manifest.h"

namespace qv {

using RecoveryId = std::array<uint8_t, 16>;
inline constexpr size_t kMaxRecoveries = 64;

struct RecoveryPlan {
  RecoveryId id{};
  BackupId backup{};
  uint32_t fragment = 0;  // the share rebuilt is x = fragment + 1
  std::string target;     // the node that receives it
  std::vector<std::string> helpers;
  std::vector<uint32_t> helper_x;  // each helper's share index, in the same order
  int64_t expires = 0;
};

// The start message (kShareRecoverStart's payload): id | u32 count |
// count x (str node | u32 x) | str target, canonical (base/wire.h).
Bytes EncodeRecoveryStart(const RecoveryPlan& plan);
Result<RecoveryPlan> DecodeRecoveryStart(ByteSpan data);
// A summand or partial sum in transit: id | scalar[32].
Bytes EncodeRecoveryValue(const RecoveryId& id, const SecretBytes& value);
Result<std::pair<RecoveryId, SecretBytes>> DecodeRecoveryValue(ByteSpan data);

class ShareRecoveries {
 public:
  explicit ShareRecoveries(std::string self) : self_(std::move(self)) {}

  // Begins a recovery this node is a helper or the target of; as a helper,
  // `own` is its share, whose Lagrange term is split into summands now.
  Status Start(const RecoveryPlan& plan, const Share* own, int64_t now);
  // Helper: the summand for each other helper (node id, value), once.
  Result<std::vector<std::pair<std::string, SecretBytes>>> TakeOutgoing(const RecoveryId& id);
  // Helper: a summand from helper `from`.
  Status AddSummand(const RecoveryId& id, const std::string& from, SecretBytes value, int64_t now);
  // Helper: the sum of all |helpers| summands (its own included) and the
  // target to send it to; the recovery is then forgotten here.
  Result<std::pair<std::string, SecretBytes>> TakePartial(const RecoveryId& id);
  // Target: a partial sum from helper `from`.
  Status AddPartial(const RecoveryId& id, const std::string& from, SecretBytes value, int64_t now);
  // Target: the rebuilt share once every helper's partial arrived, for
  // (backup, fragment); the recovery is then forgotten.
  Result<Share> TakeShare(const RecoveryId& id, const BackupId& backup, uint32_t fragment);
  size_t size() const;

 private:
  struct State {
    RecoveryPlan plan;
    bool target = false;
    std::vector<SecretBytes> outgoing;  // by helper index (helper only)
    bool dealt = false;
    std::map<std::string, SecretBytes> in;  // summands (helper) or partials (target)
  };
  Status Known(const RecoveryId& id, const std::string& from, bool want_target, int64_t now,
               State** out);
  void Expire(int64_t now);
  const std::string self_;
  mutable std::mutex mu_;
  std::map<RecoveryId, State> states_;  // guarded by mu_
};

}  // namespace qv

#endif  // QV_NODE_SHARE_RECOVERY_H_
