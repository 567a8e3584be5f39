#include "node/daemon.h"

#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "base/file_util.h"
#include "configs/cluster_config.h"
#include "node/node.h"
#include "node/node_client.h"
#include "node/server.h"

namespace qv {

namespace fs = std::filesystem;

namespace {

// The daemon's timers around the threadless node (node/node.h): each other
// node is witnessed on its own thread, so a slow or lying peer delays no
// other; two-phase-commit settling and refusal counts run on one more, on
// their own clock (a node that witnesses hourly still aborts on time).
// Every connection polls one eventfd, so Stop() cancels calls in flight
// (handshakes included) instead of waiting on a peer.
class Timers {
 public:
  Timers(Node* node, int cancel_fd) : node_(node), cancel_fd_(cancel_fd) {}
  ~Timers() { Stop(); }

  void Start() {
    const std::chrono::milliseconds settle(node_->config().settle_interval_ms);
    threads_.emplace_back([this, settle] {
      while (Wait(settle)) node_->Tick();
    });
    // Metrics for node_exporter's textfile collector, replaced atomically.
    if (const fs::path f = node_->config().metrics_file; !f.empty()) {
      const uint32_t every = node_->config().metrics_interval_s;
      threads_.emplace_back([this, f, every] {
        do {
          Status st = WriteFileAtomic(f, AsBytes(node_->MetricsText()), 0644);
          // Readable by node_exporter's user despite the node's umask 077:
          // counts and sizes only, nothing secret.
          if (st.ok() && ::chmod(f.c_str(), 0644) != 0) st = IoError("chmod " + f.string());
          if (!st.ok()) {
            node_->service().Log("event=metrics-failed detail=\"" + st.message() + "\"");
          }
        } while (Wait(std::chrono::seconds(every)));
      });
    }
    // The node's own disk, on a slower clock of its own.
    if (const uint32_t s = node_->config().self_scrub_interval_s; s > 0) {
      threads_.emplace_back([this, s] {
        while (Wait(std::chrono::seconds(s))) (void)node_->SelfScrub();
      });
    }
    // The peers known at start (a node enrolled later is witnessed from
    // the next start on); the snapshot outlives the threads.
    members_ = node_->cluster();
    for (const auto& n : members_->nodes) {
      if (n.id == node_->self().id) continue;
      const std::chrono::milliseconds every(node_->config().witness_interval_ms);
      threads_.emplace_back([this, &n, every] {
        while (Wait(every)) node_->WitnessRound(n, &stopping_);
      });
    }
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    const uint64_t one = 1;
    if (cancel_fd_ >= 0) (void)!::write(cancel_fd_, &one, sizeof one);
    stopping_.store(true);
    cv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

 private:
  // Waits one interval; false when stopping.
  bool Wait(std::chrono::milliseconds interval) {
    std::unique_lock<std::mutex> lock(mu_);
    return !cv_.wait_for(lock, interval, [&] { return stop_; });
  }

  Node* node_;
  std::shared_ptr<const ClusterConfig> members_;  // peers witnessed
  const int cancel_fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                  // guarded by mu_
  std::atomic<bool> stopping_{false};  // for rounds in progress
  std::vector<std::thread> threads_;
};

// Sockets to peers: every exchange ends within its budget, and a write to
// `cancel_fd` cancels it.
NodeEnv::Dialer SocketDialer(int cancel_fd) {
  return [cancel_fd](const NodeEntry& peer, const SigningKey& as,
                     std::chrono::milliseconds budget) -> Result<std::unique_ptr<NodeCaller>> {
    ClientOptions co;
    co.connect_timeout = std::min(budget, std::chrono::milliseconds(1000));
    co.io_timeout = std::min(budget, std::chrono::milliseconds(5000));
    co.cancel_fd = cancel_fd;
    QV_ASSIGN_OR_RETURN(auto c, NodeClient::Connect(peer, as, co));
    c->SetDeadline(std::chrono::steady_clock::now() + budget);
    return std::unique_ptr<NodeCaller>(std::move(c));
  };
}

// Runs the node config's on_pending program (no shell) as PROGRAM ID
// SUMMARY, on a thread that reaps it and kills it after 30 s; at most 8 at
// once. Its output goes to the node's own stderr (the node log).
class PendingHook {
 public:
  explicit PendingHook(fs::path program) : program_(std::move(program)) {}
  ~PendingHook() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return running_ == 0; });
  }
  void operator()(const std::string& id, const std::string& summary, NodeService* log) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (running_ >= 8) {
        log->Log("event=on-pending-skipped request=" + id + " reason=\"8 hooks still running\"");
        return;
      }
      ++running_;
    }
    std::thread([this, id, summary, log] {
      std::vector<std::string> args = {program_.string(), id, summary};
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      char* envp[] = {const_cast<char*>("PATH=/usr/local/bin:/usr/bin:/bin"), nullptr};
      pid_t pid = -1;
      const int rc = ::posix_spawn(&pid, program_.c_str(), nullptr, nullptr, argv.data(), envp);
      int status = 0;
      std::string outcome = rc == 0 ? "" : std::string("spawn failed: ") + std::strerror(rc);
      for (int waited = 0; rc == 0 && outcome.empty(); ++waited) {
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          outcome = "exit " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        } else if (waited >= 300) {
          ::kill(pid, SIGKILL);
          ::waitpid(pid, &status, 0);
          outcome = "killed after 30 s";
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
      log->Log("event=on-pending request=" + id + " outcome=\"" + outcome + "\"");
      std::lock_guard<std::mutex> lock(mu_);
      --running_;
      cv_.notify_all();
    }).detach();
  }

 private:
  const fs::path program_;
  std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;  // guarded by mu_
};

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

Status RunNodeDaemon(const fs::path& node_config) {
  // Everything the node creates (databases, fragments, manifests, the
  // audit trail, the folders that hold them) is its own alone.
  ::umask(077);
  QV_ASSIGN_OR_RETURN(NodeConfig nc, NodeConfig::Load(node_config));
  QV_ASSIGN_OR_RETURN(ClusterConfig cluster, ClusterConfig::Load(nc.cluster_file));
  const Fd cancel(::eventfd(0, EFD_CLOEXEC));
  NodeEnv env;
  env.dial = SocketDialer(cancel.get());
  std::unique_ptr<PendingHook> hook;
  NodeService* service_for_log = nullptr;
  if (!nc.on_pending_command.empty()) {
    hook = std::make_unique<PendingHook>(nc.on_pending_command);
    env.on_pending = [&hook, &service_for_log](const std::string& id, const std::string& summary) {
      if (service_for_log != nullptr) (*hook)(id, summary, service_for_log);
    };
  }
  QV_ASSIGN_OR_RETURN(auto opened, Node::Open(nc, std::move(cluster), env, node_config.string()));
  Node& node = *opened;
  NodeService& service = node.service();
  service_for_log = &service;
  ServerOptions opt;
  opt.host = node.self().host;
  opt.port = node.self().port;
  opt.handshake_timeout = std::chrono::milliseconds(nc.handshake_timeout_ms);
  opt.idle_timeout = std::chrono::milliseconds(nc.idle_timeout_ms);
  opt.io_timeout = std::chrono::milliseconds(nc.message_timeout_ms);
  opt.max_unauthenticated = nc.max_unauthenticated_connections;
  opt.max_unauthenticated_per_address = nc.max_unauthenticated_per_address;
  QV_ASSIGN_OR_RETURN(auto server, NodeServer::New(&service, &node.key(), opt));
  const fs::path pid_file = node_config.parent_path() / "node.pid";
  QV_RETURN_IF_ERROR(WriteFileAtomic(pid_file, AsBytes(std::to_string(::getpid()) + "\n"), 0644));
  const std::string listen = node.self().host + ":" + std::to_string(server->port());
  service.Log("event=start listen=" + listen + " pid=" + std::to_string(::getpid()));
  service.Audit({"start", "", "", "", "listen=" + listen});
  Timers timers(&node, cancel.get());
  timers.Start();
  Status s = server->Run(/*handle_signals=*/true);
  timers.Stop();
  node.Close(s);
  std::error_code ec;
  fs::remove(pid_file, ec);
  return s;
}

}  // namespace qv
