// Drill files' steps, read strictly (sim/drill.h): the actions and the
// keys each takes, integer fields with their bounds, fields that take one
// of a few words, and the actions a live cluster can do. Internal to sim/.
#ifndef QV_SIM_DRILL_STEP_H_
#define QV_SIM_DRILL_STEP_H_

#include <toml++/toml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"

namespace qv::sim {

// Integer fields, by action: every one is bounded.
struct IntField {
  std::string_view action, key;
  int64_t lo, hi;
};
inline constexpr IntField kInts[] = {
    {"backup", "size", 0, 64ll << 20},
    {"request", "ttl", 1, 30 * 86400},
    {"slow-site", "latency_ms", 0, 600000},
    {"slow-site", "mbps", 1, 400000},
    {"link", "latency_ms", 0, 600000},
    {"link", "mbps", 1, 400000},
    {"skew", "seconds", -365 * 86400, 365 * 86400},
    {"wait", "seconds", 0, 365 * 86400},
    {"fault", "after", 0, 1 << 20},
    {"tick", "rounds", 1, 100},
    {"witness", "rounds", 1, 100},
    {"listed", "nodes", 0, 1000},
    {"topology", "sites", 1, 16},
    {"topology", "nodes_per_site", 1, 16},
    {"topology", "spares", 0, 16},
    {"topology", "custodians", 0, 32},
    {"topology", "quorum", 0, 32},
    {"topology", "wan_latency_ms", 0, 10000},
    {"topology", "wan_mbps", 1, 400000},
};

// Fields that take one of a few words.
inline const std::map<std::pair<std::string, std::string>, std::set<std::string>>& Enums() {
  static const std::map<std::pair<std::string, std::string>, std::set<std::string>> e = {
      {{"fault", "at"},
       {"begin", "unit-write", "prepare-files", "prepare-rename", "prepare-row", "commit",
        "spend"}},
      {{"fault", "error"}, {"eio", "enospc"}},
      {{"request", "operation"}, {"restore", "repair"}},
      {{"scrub", "state"}, {"healthy", "degraded", "at risk", "lost"}},
      {{"misconfigure", "policy"},
       {"quorum-zero", "quorum-above-custodians", "duplicate-custodian-key"}},
  };
  return e;
}

class Step {
 public:
  Step(const toml::table* t, std::string where, std::string action = "")
      : t_(t), where_(std::move(where)), action_(std::move(action)) {}
  // An integer field of this step's action, in its range.
  Result<int64_t> Int(std::string_view key, std::optional<int64_t> fallback = std::nullopt) const {
    for (const auto& f : kInts) {
      if (f.action == action_ && f.key == key) return Int(key, f.lo, f.hi, fallback);
    }
    return Internal("no range for " + action_ + "." + std::string(key));
  }
  // Every bounded, enumerated and boolean field present has a good value:
  // checked for all steps before any runs.
  Status CheckValues() const {
    for (const auto& f : kInts) {
      if (f.action == action_ && (*t_)[f.key]) QV_RETURN_IF_ERROR(Int(f.key).status());
    }
    for (const auto& [field, words] : Enums()) {
      if (field.first != action_ || !(*t_)[field.second]) continue;
      QV_ASSIGN_OR_RETURN(std::string v, Str(field.second));
      if (!words.count(v)) {
        std::string all;
        for (const auto& w : words) all += (all.empty() ? "" : ", ") + w;
        return InvalidArgument(where_ + "." + field.second + ": '" + v + "' is not one of " + all);
      }
    }
    for (const char* b : {"deny", "prove", "crash"}) {
      if ((*t_)[b] && !(*t_)[b].is_boolean()) {
        return InvalidArgument(where_ + "." + b + ": not true or false");
      }
    }
    return Status::Ok();
  }
  const std::string& where() const { return where_; }
  Result<std::string> Str(std::string_view key, std::string fallback = "\x01") const {
    auto v = (*t_)[key].value<std::string>();
    if (v) return *v;
    if ((*t_)[key]) return InvalidArgument(where_ + "." + std::string(key) + ": not a string");
    if (fallback == "\x01") return InvalidArgument(where_ + ": missing " + std::string(key));
    return fallback;
  }
  Result<int64_t> Int(std::string_view key, int64_t lo, int64_t hi,
                      std::optional<int64_t> fallback) const {
    auto v = (*t_)[key].value<int64_t>();
    if (!v) {
      if ((*t_)[key]) return InvalidArgument(where_ + "." + std::string(key) + ": not an integer");
      if (!fallback) return InvalidArgument(where_ + ": missing " + std::string(key));
      return *fallback;
    }
    if (*v < lo || *v > hi) {
      return InvalidArgument(where_ + "." + std::string(key) + ": " + std::to_string(*v) +
                             " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    return *v;
  }
  bool Bool(std::string_view key, bool fallback) const {
    return (*t_)[key].value<bool>().value_or(fallback);
  }
  // A string or an array of strings.
  Result<std::vector<std::string>> List(std::string_view key) const {
    if (auto s = (*t_)[key].value<std::string>()) return std::vector<std::string>{*s};
    const toml::array* a = (*t_)[key].as_array();
    if (a == nullptr) return InvalidArgument(where_ + ": missing " + std::string(key));
    std::vector<std::string> out;
    for (const auto& e : *a) {
      auto s = e.value<std::string>();
      if (!s) return InvalidArgument(where_ + "." + std::string(key) + ": not a string list");
      out.push_back(*s);
    }
    return out;
  }
  Status OnlyKeys(const std::set<std::string>& allowed) const {
    for (const auto& [k, v] : *t_) {
      const std::string key(k.str());
      if (!allowed.count(key) && key != "do" && key != "expect" && key != "reason" &&
          key != "evidence") {
        return InvalidArgument(where_ + ": unknown key '" + key + "'");
      }
    }
    return Status::Ok();
  }

 private:
  const toml::table* t_;
  std::string where_;
  std::string action_;
};

inline const std::map<std::string, std::set<std::string>>& Actions() {
  static const std::map<std::string, std::set<std::string>> a = {
      {"backup", {"label", "size"}},
      {"request", {"label", "backup", "by", "ttl", "operation"}},
      {"scrub", {"backup", "state"}},
      {"repair", {"request"}},
      {"approve", {"request", "by", "signer", "deny"}},
      {"restore", {"request", "as", "approvals_of", "prove", "problem"}},
      {"crash", {"node"}},
      {"restart", {"node"}},
      {"destroy", {"node"}},
      {"lose-site", {"site"}},
      {"partition", {"a", "b"}},
      {"heal", {}},
      {"slow-site", {"site", "latency_ms", "mbps"}},
      {"link", {"a", "b", "latency_ms", "mbps"}},
      {"skew", {"node", "seconds"}},
      {"wait", {"seconds"}},
      {"fault", {"node", "at", "error", "crash", "after"}},
      {"clear-faults", {}},
      {"tick", {"rounds"}},
      {"witness", {"rounds"}},
      {"listed", {"backup", "nodes"}},
      {"audit-verify", {}},
      {"steal", {"node"}},
      {"combine-stolen", {"backup"}},
      {"rewrite-audit", {"node"}},
      {"replace-manifest", {"node", "backup"}},
      {"corrupt-fragment", {"node", "backup"}},
      {"tear-fragment", {"node", "backup"}},
      {"replace-master-key", {"node"}},
      {"post-denial", {"request", "by"}},
      {"liar", {"node"}},
      {"misconfigure", {"policy"}},
  };
  return a;
}

// What a live cluster of real processes can be made to do.
inline const std::set<std::string>& LiveActions() {
  static const std::set<std::string> a = {"backup",
                                          "request",
                                          "approve",
                                          "restore",
                                          "crash",
                                          "restart",
                                          "destroy",
                                          "lose-site",
                                          "corrupt-fragment",
                                          "tear-fragment",
                                          "listed",
                                          "audit-verify",
                                          "replace-master-key",
                                          "post-denial"};
  return a;
}

}  // namespace qv::sim

#endif  // QV_SIM_DRILL_STEP_H_
