#include "coordinator/local_cluster_ctl.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "base/file_util.h"
#include "configs/local_cluster.h"
#include "coordinator/cluster.h"

namespace qv {

namespace fs = std::filesystem;

namespace {

fs::path PidFile(const fs::path& dir, const std::string& id) {
  return dir / "nodes" / id / "node.pid";
}

int ReadPid(const fs::path& p) {
  std::ifstream in(p);
  int pid = 0;
  in >> pid;
  return pid;
}

// Whether `pid` is the node process started for `config`: its command line
// is `qv node run --config CONFIG`. A stale pid file after a crash may name a
// process that reused the pid; that one is never signalled or trusted.
bool IsNodeFor(int pid, const fs::path& config) {
  if (pid <= 0) return false;
  const std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream in(proc + "/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string a; std::getline(in, a, '\0');) args.push_back(a);
  for (size_t i = 0; i + 3 < args.size(); ++i) {
    if (args[i] != "node" || args[i + 1] != "run" || args[i + 2] != "--config") continue;
    fs::path given = args[i + 3];
    std::error_code ec;
    if (given.is_relative()) given = fs::read_symlink(proc + "/cwd", ec) / given;
    return !ec && fs::equivalent(given, config, ec) && !ec;
  }
  return false;
}

// A zombie (dead, not yet reaped by whoever inherited it) counts as dead.
bool Alive(int pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  size_t close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

Result<int> Spawn(const fs::path& qv, const fs::path& config, const fs::path& log) {
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork");
  if (pid == 0) {
    ::setsid();
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    // A second fork so the node is not our child: it outlives `cluster up`.
    pid_t grandchild = ::fork();
    if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
    ::execl(qv.c_str(), qv.c_str(), "node", "run", "--config", config.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return 0;
}

}  // namespace

namespace {

// After a failed start, the nodes this start spawned that did come up are
// stopped again (SIGTERM: a clean stop), so a failed `cluster up` leaves
// nothing running behind its error. Their pid files appear once they
// listen; those are waited for briefly.
void StopStarted(const fs::path& dir, const std::map<std::string, uintmax_t>& started) {
  std::set<std::string> left;
  for (const auto& [id, from] : started) left.insert(id);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!left.empty() && std::chrono::steady_clock::now() < until) {
    for (auto it = left.begin(); it != left.end();) {
      const int pid = ReadPid(PidFile(dir, *it));
      if (Alive(pid) && IsNodeFor(pid, NodeConfigPath(dir, *it))) {
        ::kill(pid, SIGTERM);
        it = left.erase(it);
      } else {
        ++it;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Starts the nodes named in `only` (all when empty) that are not running,
// and waits for those to answer a health check.
// kFailedPrecondition when host:port (a numeric IPv4 address) is bound by
// another process: a node started there would fail, and a health check
// would reach whatever holds the port and report a wrong key instead.
Status CheckPortFree(const NodeEntry& n) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(n.port);
  if (::inet_pton(AF_INET, n.host.c_str(), &a.sin_addr) != 1) return Status::Ok();
  // A node just stopped or killed may hold its port for a moment while the
  // kernel tears it down: asked for 2 s before the address counts as taken.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (;;) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return ErrnoError("socket");
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const bool in_use =
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno == EADDRINUSE;
    ::close(fd);
    if (!in_use) return Status::Ok();
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return FailedPrecondition(n.id + "'s address " + n.host + ":" + std::to_string(n.port) +
                            " is in use by another program (another cluster? qv cluster down "
                            "--dir DIR, or qv cluster init --base-port PORT)");
}

Result<std::vector<StartedNode>> Up(const fs::path& dir, const fs::path& qv,
                                    std::chrono::milliseconds wait,
                                    const std::set<std::string>& only) {
  QV_ASSIGN_OR_RETURN(ClusterConfig c, ClusterConfig::Load(dir / "cluster.toml"));
  auto wanted = [&](const std::string& id) { return only.empty() || only.count(id) > 0; };
  // Where each started node's log stood, so a node that refuses to start
  // (its one-line error) is reported at once instead of waited for.
  std::map<std::string, uintmax_t> log_start;
  auto running = [&](const std::string& id) {
    const int pid = ReadPid(PidFile(dir, id));
    return Alive(pid) && IsNodeFor(pid, NodeConfigPath(dir, id));
  };
  // Every address first, so nothing is started when one is taken.
  for (const auto& n : c.nodes) {
    if (wanted(n.id) && !running(n.id)) QV_RETURN_IF_ERROR(CheckPortFree(n));
  }
  for (const auto& n : c.nodes) {
    if (!wanted(n.id) || running(n.id)) continue;
    std::error_code ec;
    const uintmax_t size = fs::file_size(dir / "nodes" / n.id / "node.log", ec);
    log_start[n.id] = ec ? 0 : size;
    fs::path config = NodeConfigPath(dir, n.id);
    QV_ASSIGN_OR_RETURN(int ignored, Spawn(qv, config, dir / "nodes" / n.id / "node.log"));
    (void)ignored;
  }
  // The node writes its own pid file once it listens; wait for that and
  // for a health answer over an authenticated channel.
  QV_ASSIGN_OR_RETURN(auto key, SigningKey::Load(dir / "coordinator.key"));
  const auto deadline = std::chrono::steady_clock::now() + wait;
  std::vector<NodeHealth> health;
  while (true) {
    ClientOptions o;
    o.connect_timeout = std::chrono::milliseconds(500);
    o.io_timeout = std::chrono::milliseconds(2000);
    QV_ASSIGN_OR_RETURN(auto session, ClusterSession::Open(c, key.get(), o));
    health = session->Health();
    bool all = true;
    for (const auto& h : health) all = all && (h.ok || !wanted(h.id));
    if (all) break;
    for (const auto& [id, from] : log_start) {
      std::ifstream log(dir / "nodes" / id / "node.log", std::ios::binary);
      log.seekg(static_cast<std::streamoff>(from));
      for (std::string line; std::getline(log, line);) {
        if (line.rfind("qv: error: ", 0) == 0) {
          StopStarted(dir, log_start);
          return FailedPrecondition(id + " refused to start: " + line.substr(11) +
                                    " (the others started with it are stopped again)");
        }
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::string why;
      for (const auto& h : health) {
        if (!h.ok && wanted(h.id)) why += (why.empty() ? "" : "; ") + h.id + ": " + h.detail;
      }
      StopStarted(dir, log_start);
      return FailedPrecondition("nodes did not come up (see DIR/nodes/ID/node.log): " + why);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::vector<StartedNode> out;
  for (const auto& n : c.nodes) {
    if (!wanted(n.id)) continue;
    out.push_back({n.id, n.host + ":" + std::to_string(n.port), ReadPid(PidFile(dir, n.id))});
  }
  return out;
}

}  // namespace

Result<std::vector<StartedNode>> ClusterUp(const fs::path& dir, const fs::path& qv,
                                           std::chrono::milliseconds wait) {
  return Up(dir, qv, wait, {});
}

Status NodeUp(const fs::path& dir, const fs::path& qv, const std::string& id,
              std::chrono::milliseconds wait) {
  return Up(dir, qv, wait, {id}).status();
}

Status KillNode(const fs::path& dir, const std::string& id, std::chrono::milliseconds wait) {
  const fs::path pidf = PidFile(dir, id);
  const int pid = ReadPid(pidf);
  if (!Alive(pid) || !IsNodeFor(pid, NodeConfigPath(dir, id))) {
    return FailedPrecondition(id + " is not running");
  }
  if (::kill(pid, SIGKILL) != 0) return ErrnoError("kill " + id);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (Alive(pid)) {
    if (std::chrono::steady_clock::now() > deadline) return IoError(id + " did not die");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::Ok();
}

Result<int> ClusterDown(const fs::path& dir, std::chrono::milliseconds grace) {
  QV_ASSIGN_OR_RETURN(ClusterConfig c, ClusterConfig::Load(dir / "cluster.toml"));
  std::vector<std::pair<fs::path, int>> running;
  for (const auto& n : c.nodes) {
    fs::path pidf = PidFile(dir, n.id);
    int pid = ReadPid(pidf);
    if (Alive(pid) && IsNodeFor(pid, NodeConfigPath(dir, n.id))) {
      ::kill(pid, SIGTERM);
      running.push_back({pidf, pid});
    } else {
      std::error_code ec;
      fs::remove(pidf, ec);
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto& [pidf, pid] : running) {
    while (Alive(pid) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (Alive(pid)) ::kill(pid, SIGKILL);
    std::error_code ec;
    fs::remove(pidf, ec);
  }
  return static_cast<int>(running.size());
}

}  // namespace qv
