// A repair plan: which fragments (each with its key share) are rebuilt on
// which node. It travels in a repair request's destination field as text
// custodians read before they approve ("fragment 2 to node-09; fragment 4
// to node-04"), and every node applies the same text to the same manifest,
// so what was approved is exactly what is done. Value types; pure.
#ifndef QV_MANIFEST_REPAIR_PLAN_H_
#define QV_MANIFEST_REPAIR_PLAN_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "manifest/manifest.h"

namespace qv {

struct RepairMove {
  uint32_t fragment = 0;
  std::string node_id;  // where fragment and share are rebuilt (may be where it was)
};

struct RepairPlan {
  std::vector<RepairMove> moves;  // by fragment, each fragment once
  const RepairMove* Find(uint32_t fragment) const;
};

std::string FormatRepairPlan(const RepairPlan& plan);
// Exactly FormatRepairPlan's output: at least one move, fragments
// ascending and distinct, node ids of [A-Za-z0-9._-]{1,128}.
Result<RepairPlan> ParseRepairPlan(std::string_view text);

// The manifest after `plan`: `current`'s next revision (naming it by hash)
// when a fragment changes node, else `current`'s own manifest. `site_of`
// gives a cluster node's site, nullopt for a node not in the cluster.
// Refused: a fragment out of range, an unknown node, or a node left
// holding two fragments.
Result<Manifest> ApplyRepairPlan(
    const SignedManifest& current, const RepairPlan& plan,
    const std::function<std::optional<std::string>(const std::string&)>& site_of);

}  // namespace qv

#endif  // QV_MANIFEST_REPAIR_PLAN_H_
