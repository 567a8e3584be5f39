// A live cluster as a drill world (sim/drill_world.h): real node processes
// on loopback, made by `qv cluster init` (keys beside the cluster file) and
// started by `qv cluster up`. Crashes are kill -9, lost disks are deleted,
// corruption is written into the real fragment files; the ceremony runs over
// real Noise connections. Refuses a cluster with a node off loopback: these
// drills destroy data.
#ifndef QV_SIM_LIVE_CLUSTER_H_
#define QV_SIM_LIVE_CLUSTER_H_

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sim/drill_world.h"

namespace qv::sim {

class LiveCluster : public DrillWorld {
 public:
  // Starts every node that is not running (a destroyed one comes back
  // empty) and waits for them. `qv_binary` runs the nodes; `work` holds
  // restores.
  static Result<std::unique_ptr<LiveCluster>> Open(const std::filesystem::path& cluster_file,
                                                   const std::filesystem::path& qv_binary,
                                                   const std::filesystem::path& work);

  const ClusterConfig& cluster() const override { return cluster_; }
  Result<const SigningKey*> Key(const std::string& actor) override;
  Result<std::unique_ptr<ClusterSession>> Session(const std::string& actor) override;
  void Note(const std::string& line) override;
  std::vector<std::string> NewEvidence() override;
  Status Crash(const std::string& node) override;
  Status Restart(const std::string& node) override;
  Status Destroy(const std::string& node) override;
  const std::vector<std::string>& events() const { return events_; }

 protected:
  const Clock& Now() const override { return *SystemClock::Default(); }
  double ElapsedMs() const override;
  std::filesystem::path WorkDir() const override { return work_; }
  std::filesystem::path NodeDir(const std::string& node) const override {
    return dir_ / "nodes" / node;
  }

 private:
  LiveCluster() = default;
  std::filesystem::path dir_, qv_, work_;
  ClusterConfig cluster_;
  std::map<std::string, std::unique_ptr<SigningKey>> keys_;
  std::set<std::string> destroyed_;
  std::map<std::string, uint64_t> evidence_seen_;  // node -> audit seq read
  std::vector<std::string> events_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace qv::sim

#endif  // QV_SIM_LIVE_CLUSTER_H_
