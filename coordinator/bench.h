// `qv bench`: measures each stage of the data path on this machine and the
// whole in-process pipeline, in one run, so the pipeline is judged against
// the limit the stages imply rather than against remembered numbers.
//
// Stage rates are per core. The compute limit of a pipeline is the inverse
// of the summed per-plaintext-byte cost of its stages, times the cores used:
//   backup : SHA-256 (file digest) + AEAD + RS encode + (n/k) SHA-256 (units)
//   restore: SHA-256 (units, k/k) + AEAD + SHA-256 (file digest) [+ RS decode]
#ifndef QV_COORDINATOR_BENCH_H_
#define QV_COORDINATOR_BENCH_H_

#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/aead.h"

namespace qv {

struct BenchOptions {
  uint64_t pipeline_bytes = 512ull << 20;
  uint32_t k = 4, m = 2, t = 3;
  CipherSuite cipher = CipherSuite::kChaCha20Poly1305;
  double stage_seconds = 0.4;
  int cores = 0;  // 0: all hardware threads
};

struct BenchFigure {
  std::string name;
  double mb_per_s = 0;  // 1 MB = 10^6 bytes
  double limit = 0;     // compute limit for pipelines, 0 for stages
  int cores = 1;
};

struct BenchReport {
  std::vector<BenchFigure> stages;
  std::vector<BenchFigure> pipelines;
  int cores = 1;
  // Compute limits (MB/s of artifact, all cores) of the whole path through a
  // cluster on this machine: the coordinator's stages, Noise transport
  // encryption and decryption of every byte sent, and the nodes' hash check.
  //   backup : coordinator (as in-process) + 2 (n/k) transport + (n/k) sha
  //   restore: coordinator (as in-process) + 2 transport (k units fetched)
  double cluster_backup_limit = 0;
  double cluster_restore_limit = 0;
  // What a node checks before a release (certificate parse, request and
  // manifest signatures, policy, M approvals), single core, against the
  // Ed25519 verification rate that bounds it.
  struct {
    uint32_t custodians = 5, quorum = 3;
    int signatures = 0;  // Ed25519 verifications per certificate
    double certificates_per_s = 0;
    double ed25519_verifies_per_s = 0;
  } certificates;
};

Result<BenchReport> RunBench(const BenchOptions& options);

}  // namespace qv

#endif  // QV_COORDINATOR_BENCH_H_
