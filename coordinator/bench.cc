#include "coordinator/bench.h"

#include <sched.h>
#include <sodium.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "coordinator/artifact.h"
#include "coordinator/memory_store.h"
#include "coordinator/pipeline.h"
#include "crypto/channel.h"
#include "crypto/sha256.h"
#include "erasure/reed_solomon.h"
#include "quorum/verify.h"

namespace qv {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a) {
  return std::chrono::duration<double>(Clock::now() - a).count();
}

// Runs `body` (which processes `bytes` bytes) until `min_seconds` pass;
// returns MB/s.
template <typename F>
double Rate(double min_seconds, uint64_t bytes, F body) {
  body();  // warm caches and lazy initialisation
  uint64_t total = 0;
  auto start = Clock::now();
  do {
    body();
    total += bytes;
  } while (Seconds(start) < min_seconds);
  return static_cast<double>(total) / Seconds(start) / 1e6;
}

// Pins the calling thread (and the threads it starts) to the first `cores`
// CPUs it may run on; restores the old mask on destruction.
class CpuPin {
 public:
  explicit CpuPin(int cores) {
    sched_getaffinity(0, sizeof old_, &old_);
    cpu_set_t set;
    CPU_ZERO(&set);
    int added = 0;
    for (int c = 0; c < CPU_SETSIZE && added < cores; ++c) {
      if (CPU_ISSET(c, &old_)) {
        CPU_SET(c, &set);
        ++added;
      }
    }
    sched_setaffinity(0, sizeof set, &set);
  }
  ~CpuPin() { sched_setaffinity(0, sizeof old_, &old_); }

 private:
  cpu_set_t old_;
};

// Certificates per second through the node's release check, M of N, with
// every check that precedes the durable spend: parse the certificate (and
// verify the request signature), parse the stored manifest (and verify the
// coordinator's signature), then VerifyCertificate (M approval signatures).
Status BenchCertificates(double secs, BenchReport& r) {
  auto& out = r.certificates;
  QV_ASSIGN_OR_RETURN(auto coordinator, SigningKey::Generate());
  QV_ASSIGN_OR_RETURN(auto requester, SigningKey::Generate());
  std::vector<std::unique_ptr<SigningKey>> custodian_keys;
  Policy policy;
  policy.quorum = out.quorum;
  policy.max_request_seconds = 3600;
  policy.quorum_ops = AllQuorumOps();
  for (uint32_t i = 0; i < out.custodians; ++i) {
    QV_ASSIGN_OR_RETURN(auto key, SigningKey::Generate());
    policy.custodians.push_back({"c" + std::to_string(i + 1), key->public_key()});
    custodian_keys.push_back(std::move(key));
  }
  Bytes weights(64 << 10, 0x42);
  Artifact artifact = MemoryArtifact("bench", {{"weights.safetensors", weights}});
  MemoryNodes nodes(6);
  BackupOptions bo;
  bo.policy = policy;
  QV_ASSIGN_OR_RETURN(BackupOutcome b, RunBackup(artifact, nodes, *coordinator, bo));
  const SignedManifest& sm = b.manifest;

  const int64_t now = std::time(nullptr);
  QuorumRequest q;
  q.backup_id = sm.manifest().backup_id;
  q.backup_name = sm.manifest().artifact_name;
  q.manifest_hash = sm.Hash();
  q.requester_id = "ops";
  q.requester_key = requester->public_key();
  q.purpose = "benchmark";
  q.destination = "nowhere";
  q.created_unix = now;
  q.expires_unix = now + 600;
  QV_ASSIGN_OR_RETURN(SignedRequest req, SignedRequest::Sign(q, *requester));
  Certificate cert{req, {}};
  for (uint32_t i = 0; i < out.quorum; ++i) {
    cert.approvals.push_back(
        *Approval::Sign(req, *custodian_keys[i], "c" + std::to_string(i + 1), true, "", now));
  }
  const Bytes encoded = cert.Encode();
  const std::vector<Principal> requesters = {{"ops", requester->public_key()}};
  const PublicKey coordinator_key = coordinator->public_key();
  Status failed = Status::Ok();
  auto check = [&] {
    auto c = Certificate::Parse(encoded);
    auto m = SignedManifest::Parse(sm.encoded(), &coordinator_key);
    if (!c.ok() || !m.ok()) {
      failed = c.ok() ? m.status() : c.status();
      return;
    }
    VerifyInput in{kOpRestore, q.backup_id, &*m, &requesters, now, 300};
    auto v = VerifyCertificate(*c, in);
    if (!v.ok()) failed = v.status();
  };
  // Rate() counts "bytes"; one unit per certificate gives certificates/s / 1e6.
  out.certificates_per_s = Rate(secs, 1, check) * 1e6;
  QV_RETURN_IF_ERROR(failed.WithContext("benchmark certificate"));
  out.signatures = 2 + static_cast<int>(out.quorum);

  const Bytes message(sm.encoded().begin(), sm.encoded().end());
  const Signature sig = requester->Sign(message);
  const PublicKey pk = requester->public_key();
  out.ed25519_verifies_per_s =
      Rate(secs, 1, [&] { (void)VerifySignature(pk, message, sig); }) * 1e6;
  return Status::Ok();
}

}  // namespace

Result<BenchReport> RunBench(const BenchOptions& opt) {
  EnsureSodium();
  BenchReport r;
  {
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    r.cores = opt.cores > 0 ? opt.cores : CPU_COUNT(&set);
  }
  const double secs = opt.stage_seconds;
  const uint32_t n = opt.k + opt.m;
  const size_t unit = kDefaultUnitSize;

  // Stages, single core, on cache-sized-to-realistic buffers.
  Bytes src(64 << 20), dst(64 << 20);
  randombytes_buf(src.data(), src.size());
  std::memset(dst.data(), 0, dst.size());
  double memcpy_rate =
      Rate(secs, src.size(), [&] { std::memcpy(dst.data(), src.data(), src.size()); });
  r.stages.push_back({"memcpy (reference)", memcpy_rate, 0, 1});

  SecretBytes key = SecretBytes::Random(kAeadKeySize);
  BackupId id{};
  const size_t chunk = opt.k * unit - kAeadTagSize;
  double aead_rate = 0;
  for (CipherSuite suite : {CipherSuite::kChaCha20Poly1305, CipherSuite::kAes256Gcm}) {
    QV_ASSIGN_OR_RETURN(auto c, ChunkCipher::New(suite, key, id));
    const size_t chunks = src.size() / (chunk + kAeadTagSize);
    double rate = Rate(secs, chunks * chunk, [&] {
      for (size_t i = 0; i < chunks; ++i) {
        (void)c->Seal(i, false, ByteSpan(src.data() + i * chunk, chunk),
                      dst.data() + i * (chunk + kAeadTagSize));
      }
    });
    r.stages.push_back({std::string(CipherSuiteName(suite)) + " seal", rate, 0, 1});
    if (suite == opt.cipher) aead_rate = rate;
  }
  double sha_rate = Rate(secs, src.size(), [&] {
    for (size_t off = 0; off + unit <= src.size(); off += unit) {
      (void)MerkleLeafHash(ByteSpan(src.data() + off, unit));
    }
  });
  r.stages.push_back({"sha-256", sha_rate, 0, 1});

  QV_ASSIGN_OR_RETURN(auto rs, ReedSolomon::New(static_cast<int>(opt.k), static_cast<int>(opt.m)));
  const size_t stripes = src.size() / (opt.k * unit);
  Bytes parity(stripes * opt.m * unit);
  std::vector<const uint8_t*> data(opt.k);
  std::vector<uint8_t*> par(opt.m);
  double enc_rate = Rate(secs, stripes * opt.k * unit, [&] {
    for (size_t s = 0; s < stripes; ++s) {
      for (uint32_t j = 0; j < opt.k; ++j) data[j] = src.data() + (s * opt.k + j) * unit;
      for (uint32_t j = 0; j < opt.m; ++j) par[j] = parity.data() + (s * opt.m + j) * unit;
      rs->Encode(unit, data, par);
    }
  });
  std::string rs_name = "rs " + std::to_string(opt.k) + "+" + std::to_string(opt.m);
  r.stages.push_back({rs_name + " encode", enc_rate, 0, 1});

  // Decode: the first min(m, k) data units of each stripe are lost.
  const uint32_t lost = std::min(opt.m, opt.k);
  Bytes stripe_buf(n * unit);
  std::vector<uint8_t*> ptrs(n);
  std::vector<bool> present(n, true), rebuild(n, false);
  for (uint32_t f = 0; f < lost; ++f) {
    present[f] = false;
    rebuild[f] = true;
  }
  for (uint32_t f = 0; f < n; ++f) ptrs[f] = stripe_buf.data() + f * unit;
  double dec_rate = 0;
  if (lost > 0) {
    dec_rate = Rate(secs, stripes * opt.k * unit, [&] {
      for (size_t s = 0; s < stripes; ++s) (void)rs->Reconstruct(unit, ptrs, present, rebuild);
    });
    r.stages.push_back({rs_name + " decode (" + std::to_string(lost) + " lost)", dec_rate, 0, 1});
  }

  // The Noise transport as the channel uses it: 1 MiB messages in frames.
  double transport_rate = 0;
  {
    QV_ASSIGN_OR_RETURN(auto ka, SigningKey::Generate());
    QV_ASSIGN_OR_RETURN(auto kb, SigningKey::Generate());
    QV_ASSIGN_OR_RETURN(auto a, Channel::New(true, *ka, AsBytes("bench")));
    QV_ASSIGN_OR_RETURN(auto b, Channel::New(false, *kb, AsBytes("bench")));
    // Handshake in memory.
    FrameDecoder to_b, to_a;
    QV_ASSIGN_OR_RETURN(Bytes w, a->Start());
    for (int step = 0; step < 3 && !(a->established() && b->established()); ++step) {
      Channel& dst = step % 2 == 0 ? *b : *a;
      FrameDecoder& dec = step % 2 == 0 ? to_b : to_a;
      QV_RETURN_IF_ERROR(dec.Feed(w));
      auto f = dec.Next();
      if (!f) return Internal("bench handshake stalled");
      QV_ASSIGN_OR_RETURN(Channel::Event ev, dst.OnFrame(*f));
      w = ev.to_send;
    }
    Bytes msg(1 << 20, 0x5a);
    transport_rate = Rate(secs, msg.size(), [&] { (void)a->Seal(msg); });
    r.stages.push_back({"noise transport seal (64 KiB frames)", transport_rate, 0, 1});
  }

  // Per-plaintext-byte costs (seconds per MB) and the limits they imply.
  const double backup_cost =
      1 / sha_rate + 1 / aead_rate + 1 / enc_rate + (double(n) / opt.k) / sha_rate;
  const double restore_cost = 1 / sha_rate + 1 / aead_rate + 1 / sha_rate;
  const double restore_decode_cost = restore_cost + (dec_rate > 0 ? 1 / dec_rate : 0);
  const double nk = double(n) / opt.k;
  r.cluster_backup_limit = r.cores / (backup_cost + 2 * nk / transport_rate + nk / sha_rate);
  r.cluster_restore_limit = r.cores / (restore_cost + 2 / transport_rate);

  QV_RETURN_IF_ERROR(BenchCertificates(secs, r));

  // The whole pipeline on an in-memory artifact into memory nodes.
  src.clear();
  src.shrink_to_fit();
  dst.clear();
  dst.shrink_to_fit();
  Bytes artifact_bytes(opt.pipeline_bytes);
  randombytes_buf(artifact_bytes.data(), artifact_bytes.size());
  Artifact artifact = MemoryArtifact("bench", {{"weights.safetensors", artifact_bytes}});
  QV_ASSIGN_OR_RETURN(auto signer, SigningKey::Generate());

  std::vector<int> core_counts = {1};
  if (r.cores > 1) core_counts.push_back(r.cores);
  for (int cores : core_counts) {
    CpuPin pin(cores);
    BackupOptions bo;
    bo.k = opt.k;
    bo.m = opt.m;
    bo.t = opt.t;
    bo.cipher = opt.cipher;
    bo.workers = cores;
    MemoryNodes nodes(n);
    {
      const uint32_t u = ChooseUnitSize(opt.pipeline_bytes, opt.k, kDefaultUnitSize);
      const uint64_t chunk = uint64_t{opt.k} * u - kAeadTagSize;
      nodes.Reserve(StripeCountFor(opt.pipeline_bytes, static_cast<uint32_t>(chunk)) * u);
    }
    QV_ASSIGN_OR_RETURN(BackupOutcome b, RunBackup(artifact, nodes, *signer, bo));
    const std::string tag = cores == 1 ? "1 core" : std::to_string(cores) + " cores";
    r.pipelines.push_back({"backup pipeline, " + tag, b.plaintext_bytes / b.seconds / 1e6,
                           cores / backup_cost, cores});

    RestoreOptions ro;
    ro.workers = cores;
    auto writer = NewDiscardWriter();
    QV_ASSIGN_OR_RETURN(RestoreReport rr,
                        RunRestore(b.manifest, nodes.Sources(b.manifest.manifest().unit_size),
                                   nodes.Shares(), *writer, ro));
    r.pipelines.push_back({"restore pipeline, " + tag, rr.plaintext_bytes / rr.seconds / 1e6,
                           cores / restore_cost, cores});

    if (lost > 0) {
      for (uint32_t f = 0; f < lost; ++f) nodes.node(f).fragment.clear();
      auto writer2 = NewDiscardWriter();
      QV_ASSIGN_OR_RETURN(RestoreReport rd,
                          RunRestore(b.manifest, nodes.Sources(b.manifest.manifest().unit_size),
                                     nodes.Shares(), *writer2, ro));
      r.pipelines.push_back(
          {"restore with " + std::to_string(lost) + " data fragments lost, " + tag,
           rd.plaintext_bytes / rd.seconds / 1e6, cores / restore_decode_cost, cores});
    }
  }
  return r;
}

}  // namespace qv
