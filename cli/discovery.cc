#include "cli/discovery.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace qv {

namespace fs = std::filesystem;

namespace {

// The cluster file a folder stands for; anything else as given.
std::string ClusterFileOf(std::string path) {
  std::error_code ec;
  if (!path.empty() && fs::is_directory(path, ec))
    return (fs::path(path) / "cluster.toml").string();
  return path;
}

// ./cluster.toml, else the XDG one: the first that exists, with its name.
std::optional<std::pair<std::string, std::string>> FoundClusterFile() {
  std::error_code ec;
  if (fs::is_regular_file("cluster.toml", ec))
    return std::make_pair("cluster.toml", "./cluster.toml");
  fs::path base;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && *xdg == '/') {
    base = xdg;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/') {
    base = fs::path(home) / ".config";
  }
  if (!base.empty()) {
    const fs::path f = base / "quorumvault" / "cluster.toml";
    if (fs::is_regular_file(f, ec)) return std::make_pair(f.string(), f.string());
  }
  return std::nullopt;
}

template <typename F>
void ForEachApp(const CLI::App& app, const F& f) {
  f(app);
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    ForEachApp(*sub, f);
  }
}

// Levenshtein distance, for suggestions among a few dozen short names.
size_t Distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

}  // namespace

std::string DefaultClusterFile() {
  if (const char* env = std::getenv("QV_CLUSTER"); env != nullptr && *env != '\0') {
    return ClusterFileOf(env);
  }
  auto found = FoundClusterFile();
  return found ? found->first : "";
}

void ApplyDiscovery(CLI::App& app) {
  const auto found = FoundClusterFile();
  ForEachApp(app, [&](const CLI::App& a) {
    CLI::App& sub = const_cast<CLI::App&>(a);
    if (CLI::Option* o = sub.get_option_no_throw("--cluster")) {
      o->required(false)->envname("QV_CLUSTER")->transform(ClusterFileOf, "", "");
      // --local beside a cluster file from the environment is not a
      // conflict (the caller drops the found file); beside a typed
      // --cluster, the command itself says to give one of them.
      if (CLI::Option* local = sub.get_option_no_throw("--local")) {
        local->remove_excludes(o);
        o->remove_excludes(local);
      }
      if (found) o->default_val(found->first);
    }
    if (CLI::Option* o = sub.get_option_no_throw("--key")) o->envname("QV_KEY");
  });
}

std::string ClusterSource(bool typed) {
  if (typed) return "--cluster";
  if (const char* env = std::getenv("QV_CLUSTER"); env != nullptr && *env != '\0') {
    return "QV_CLUSTER";
  }
  if (auto found = FoundClusterFile()) return found->second;
  return "";
}

bool TypedOnCommandLine(const std::vector<std::string>& args, const std::string& flag) {
  return std::any_of(args.begin(), args.end(), [&](const std::string& w) {
    return w == flag || w.rfind(flag + "=", 0) == 0;
  });
}

std::optional<std::string> UnknownCommand(const CLI::App& app,
                                          const std::vector<std::string>& args) {
  const CLI::App* at = &app;
  for (const std::string& word : args) {
    if (word.empty() || word[0] == '-') return std::nullopt;
    auto subs = at->get_subcommands([](const CLI::App*) { return true; });
    if (subs.empty()) return std::nullopt;
    auto it = std::find_if(subs.begin(), subs.end(),
                           [&](const CLI::App* s) { return s->get_name() == word; });
    if (it != subs.end()) {
      at = *it;
      continue;
    }
    std::string best;
    size_t best_d = 3;  // suggest only what is at most 2 edits away
    for (const CLI::App* s : subs) {
      const size_t d = Distance(word, s->get_name());
      if (d < best_d) best_d = d, best = s->get_name();
    }
    // A word that names no subcommand where one is required, or that is
    // near one where the command takes no words of its own.
    const bool takes_words =
        !at->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty();
    if (at->get_require_subcommand_min() == 0 && (best.empty() || takes_words)) {
      return std::nullopt;
    }
    std::string path = at == &app ? "" : at->get_name() + " ";
    std::string msg = "unknown command '" + path + word + "'";
    if (!best.empty()) msg += "; did you mean '" + path + best + "'?";
    std::string names;
    for (const CLI::App* s : subs) names += (names.empty() ? "" : ", ") + s->get_name();
    return msg + " (commands: " + names + ")";
  }
  // The words ran out where a command is still needed: say which.
  if (at->get_require_subcommand_min() > 0) {
    std::string names;
    for (const CLI::App* s : at->get_subcommands([](const CLI::App*) { return true; })) {
      names += (names.empty() ? "" : ", ") + s->get_name();
    }
    const std::string path = at == &app ? "qv" : "qv " + Join(args);
    return "'" + path + "' needs a command: " + names + " (add --help to any for its options)";
  }
  return std::nullopt;
}

}  // namespace qv
