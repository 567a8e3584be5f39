#include "manifest/repair_plan.h"

#include <set>

namespace qv {

const RepairMove* RepairPlan::Find(uint32_t fragment) const {
  for (const auto& m : moves) {
    if (m.fragment == fragment) return &m;
  }
  return nullptr;
}

std::string FormatRepairPlan(const RepairPlan& plan) {
  std::string out;
  for (const auto& m : plan.moves) {
    if (!out.empty()) out += "; ";
    out += "fragment " + std::to_string(m.fragment) + " to " + m.node_id;
  }
  return out;
}

namespace {

bool NodeIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

Result<RepairPlan> ParseRepairPlan(std::string_view text) {
  RepairPlan plan;
  auto bad = [&](const std::string& why) {
    return InvalidArgument("repair plan: " + why + " (expected \"fragment N to NODE; ...\")");
  };
  if (text.empty()) return bad("empty");
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find("; ", at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view part = text.substr(at, end - at);
    constexpr std::string_view kWord = "fragment ";
    if (part.substr(0, kWord.size()) != kWord) return bad("a move does not start with 'fragment'");
    part.remove_prefix(kWord.size());
    const size_t to = part.find(" to ");
    if (to == std::string_view::npos || to == 0 || to > 3) return bad("no fragment number");
    uint32_t f = 0;
    for (char c : part.substr(0, to)) {
      if (c < '0' || c > '9') return bad("fragment number");
      f = f * 10 + static_cast<uint32_t>(c - '0');
    }
    if (to > 1 && part[0] == '0') return bad("fragment number with a leading zero");
    const std::string_view node = part.substr(to + 4);
    if (node.empty() || node.size() > 128) return bad("node id length");
    for (char c : node) {
      if (!NodeIdChar(c)) return bad("node id character");
    }
    if (!plan.moves.empty() && f <= plan.moves.back().fragment) {
      return bad("fragments must be ascending and distinct");
    }
    if (plan.moves.size() >= 255) return bad("more than 255 moves");
    plan.moves.push_back({f, std::string(node)});
    if (end == text.size()) break;
    at = end + 2;
  }
  return plan;
}

Result<Manifest> ApplyRepairPlan(
    const SignedManifest& current, const RepairPlan& plan,
    const std::function<std::optional<std::string>(const std::string&)>& site_of) {
  Manifest m = current.manifest();
  bool moved = false;
  for (const auto& mv : plan.moves) {
    if (mv.fragment >= m.n()) {
      return InvalidArgument("repair plan names fragment " + std::to_string(mv.fragment) +
                             " of a backup with " + std::to_string(m.n()));
    }
    const std::optional<std::string> site = site_of(mv.node_id);
    if (!site) return InvalidArgument("repair plan names " + mv.node_id + ", not a cluster node");
    Placement* p = nullptr;
    for (auto& q : m.placement) {
      if (q.fragment == mv.fragment) p = &q;
    }
    if (p == nullptr) {
      return InvalidArgument("fragment " + std::to_string(mv.fragment) + " is placed nowhere");
    }
    if (p->node_id != mv.node_id || p->site != *site) {
      p->node_id = mv.node_id;
      p->site = *site;
      moved = true;
    }
  }
  std::set<std::string> holders;
  for (const auto& p : m.placement) {
    if (!holders.insert(p.node_id).second) {
      return InvalidArgument("the repair would leave " + p.node_id +
                             " holding two fragments (and two shares) of the backup");
    }
  }
  if (moved) {
    m.revision = current.manifest().revision + 1;
    m.previous = current.Hash();
  }
  return m;
}

}  // namespace qv
