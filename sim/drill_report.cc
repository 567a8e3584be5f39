// Renderings of drill reports: the terminal table, JSON, the Markdown
// report an auditor reads.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/text.h"
#include "sim/drill.h"

namespace qv::sim {

namespace {

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

const char* Verdict(const DrillReport& r) { return r.skipped ? "SKIP" : r.pass ? "PASS" : "FAIL"; }

std::string DrillTable(const std::vector<DrillReport>& reports) {
  std::string out;
  size_t skipped = 0;
  char line[512];
  std::snprintf(line, sizeof line, "%-34s %-8s %-6s %s\n", "DRILL", "KIND", "RESULT",
                "EXPECTED / OBSERVED / EVIDENCE");
  out += line;
  size_t passed = 0;
  for (const auto& r : reports) {
    passed += r.pass;
    skipped += r.skipped;
    std::snprintf(line, sizeof line, "%-34s %-8s %-6s %s\n", Printable(r.name).c_str(),
                  Printable(r.kind).c_str(), Verdict(r), Printable(r.rand_category).c_str());
    out += line;
    if (r.skipped) {
      out += "    skipped: " + Printable(r.failure) + "\n";
      continue;
    }
    for (const auto& s : r.steps) {
      if (s.expected.empty() && s.pass) continue;
      out += "    " + std::string(s.pass ? "ok   " : "FAIL ") + Printable(s.action) + "\n";
      out +=
          "         expected " + Printable(s.expected.empty() ? "it to work" : s.expected) + "\n";
      out += "         observed " + Printable(s.observed) + "\n";
      for (size_t i = 0; i < s.evidence.size() && i < 3; ++i) {
        out += "         evidence " + Printable(s.evidence[i]) + "\n";
      }
      if (s.evidence.size() > 3) {
        out += "         evidence (" + std::to_string(s.evidence.size() - 3) + " more)\n";
      }
    }
    if (r.kind == "disaster") {
      out += "    RTO " +
             (r.rto_ms >= 0
                  ? std::to_string(r.rto_ms) + (r.live ? " ms (measured)" : " ms (simulated)")
                  : "none") +
             ", RPO " + std::to_string(r.lost.size()) + " of " + std::to_string(r.backups) +
             " committed backup(s) lost" +
             (r.lost.empty() ? "" : ": " + Printable(Join(r.lost, ", "))) + "\n";
    }
    if (!r.pass) out += "    why: " + Printable(r.failure) + "\n";
  }
  out += std::to_string(passed) + " of " + std::to_string(reports.size() - skipped) +
         " drills passed" +
         (skipped ? ", " + std::to_string(skipped) + " skipped (they need the simulator)" : "") +
         "\n";
  return out;
}

std::string DrillJson(const std::vector<DrillReport>& reports, uint64_t seed) {
  nlohmann::ordered_json j;
  j["seed"] = seed;
  j["drills"] = nlohmann::ordered_json::array();
  for (const auto& r : reports) {
    nlohmann::ordered_json d;
    d["file"] = r.file;
    d["name"] = r.name;
    d["rand_category"] = r.rand_category;
    d["kind"] = r.kind;
    d["result"] = Verdict(r);
    d["failure"] = r.failure;
    d["rto_ms"] = r.rto_ms;
    d["live"] = r.live;
    d["backups_committed"] = r.backups;
    d["backups_lost"] = r.lost;
    d["net_calls"] = r.net_calls;
    d["net_bytes"] = r.net_bytes;
    d["trace"] = r.trace;
    d["steps"] = nlohmann::ordered_json::array();
    for (const auto& s : r.steps) {
      d["steps"].push_back({{"action", s.action},
                            {"expected", s.expected},
                            {"observed", s.observed},
                            {"result", s.pass ? "PASS" : "FAIL"},
                            {"evidence", s.evidence}});
    }
    d["timeline"] = r.timeline;
    j["drills"].push_back(std::move(d));
  }
  // Invalid UTF-8 (from a hostile name) is replaced, never thrown on.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string DrillMarkdown(const std::vector<DrillReport>& reports, uint64_t seed) {
  auto cell = [](std::string s) {
    s = Printable(s);
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
  };
  size_t passed = 0;
  for (const auto& r : reports) passed += r.pass;
  std::string out = "# quorumvault drill report\n\n";
  out += "Seed " + std::to_string(seed) +
         ": the same seed reproduces this run exactly (`qv drill "
         "run --all --seed " +
         std::to_string(seed) + "`). " + std::to_string(passed) + " of " +
         std::to_string(reports.size()) +
         " drills passed. Every drill ran the real node and "
         "coordinator code on a simulated network, clock and disk.\n\n";
  out += "| Drill | RAND category | Kind | Result | RTO (simulated) | Backups lost |\n";
  out += "|---|---|---|---|---|---|\n";
  for (const auto& r : reports) {
    out +=
        "| " + cell(r.name) + " | " + cell(r.rand_category) + " | " + r.kind + " | " +
        (r.pass || r.skipped ? std::string(Verdict(r)) : std::string("**FAIL**")) + " | " +
        (r.rto_ms >= 0 ? std::to_string(r.rto_ms) + " ms" : "-") + " | " +
        (r.kind == "disaster" ? std::to_string(r.lost.size()) + " of " + std::to_string(r.backups)
                              : std::string("-")) +
        " |\n";
  }
  for (const auto& r : reports) {
    out += "\n## " + cell(r.name) + "\n\n" + cell(r.summary) + "\n\n";
    if (!r.pass) out += "**FAILED:** " + cell(r.failure) + "\n\n";
    out += "| Step | Expected | Observed | Result |\n|---|---|---|---|\n";
    for (const auto& s : r.steps) {
      out += "| " + cell(s.action) + " | " + cell(s.expected.empty() ? "(setup)" : s.expected) +
             " | " + cell(s.observed) + " | " + (s.pass ? "PASS" : "**FAIL**") + " |\n";
    }
    std::vector<std::string> ev;
    for (const auto& s : r.steps) ev.insert(ev.end(), s.evidence.begin(), s.evidence.end());
    if (!ev.empty()) {
      out += "\nEvidence (audit entries the nodes wrote):\n\n";
      for (const auto& e : ev) out += "- `" + Printable(e) + "`\n";
    }
    if (!r.lost.empty()) out += "\nUnrecoverable: " + cell(Join(r.lost, ", ")) + "\n";
  }
  return out;
}

}  // namespace qv::sim
