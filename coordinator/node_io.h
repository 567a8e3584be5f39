// The coordinator as a client of nodes: fragment sinks and sources, manifest
// and share fetches, all over a NodeCaller, the transport boundary. A caller
// is a network connection (node/node_client.h) or, in tests and sim/,
// a NodeService in the same process.
#ifndef QV_COORDINATOR_NODE_IO_H_
#define QV_COORDINATOR_NODE_IO_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/executor.h"
#include "configs/cluster_config.h"
#include "coordinator/fragment_store.h"
#include "crypto/secretbox.h"
#include "node/messages.h"
#include "node/node_caller.h"
#include "node/node_service.h"

namespace qv {

// Backup target over n callers (callers[f] receives fragment f). With a
// threaded executor each sink sends from its own thread with at most
// `inflight_bytes` queued, so all nodes receive in parallel while memory
// stays bounded; otherwise each batch is sent on the calling thread.
class RemoteTarget : public BackupTarget {
 public:
  // `node_keys[i]` is the pinned identity of the node behind `callers[i]`:
  // each share travels sealed to that node's X25519 form, so no buffer on
  // either side holds it outside secure memory.
  RemoteTarget(std::vector<NodeCaller*> callers, std::vector<Placement> placement,
               std::vector<PublicKey> node_keys, size_t inflight_bytes = 8u << 20,
               Executor* executor = ThreadExecutor::Default());
  Result<std::vector<std::unique_ptr<FragmentSink>>> OpenSinks(const BackupId& id, uint32_t n,
                                                               uint32_t unit_size,
                                                               uint64_t stripes) override;

 private:
  std::vector<NodeCaller*> callers_;
  std::vector<Placement> placement_;
  std::vector<PublicKey> node_keys_;
  size_t inflight_;
  Executor* executor_;
};

// A fragment source reading units from a node, in batches read ahead on a
// thread of its own when `executor` is threaded, else fetched when needed.
std::unique_ptr<FragmentSource> NewRemoteSource(NodeCaller* caller, const BackupId& id,
                                                uint32_t fragment, uint64_t unit_size,
                                                uint64_t stripes,
                                                Executor* executor = ThreadExecutor::Default());

// Tells every caller (each a node that released for the receipt's request)
// which nodes released, in parallel; failures are named in problems. Each
// node audits it, so `qv audit verify` can find a release that one node's
// log lost while its peers' receipts still name it.
void SendReceipts(const std::vector<NodeCaller*>& callers, const BackupId& backup,
                  const ReleaseReceipt& receipt, std::vector<std::string>* problems,
                  Executor* executor = ThreadExecutor::Default());

// `manifest` for `request` (a prepare or a repair install): in its payload
// when it fits one page, else sent ahead to `caller` in kManifestData
// pieces (the request then carries none).
Status AttachManifest(NodeCaller& caller, const BackupId& id, const Bytes& manifest,
                      Request* request);

// The signed manifest from the first caller that has a valid one; every
// caller's copy that parses must match it byte for byte.
Result<SignedManifest> FetchManifest(const std::vector<NodeCaller*>& callers, const BackupId& id,
                                     const PublicKey& coordinator,
                                     std::vector<std::string>* problems);
// Presents a quorum certificate to every caller in parallel; each node checks
// it and answers with its share sealed to the request's one-time key, which
// `reply_key` opens. Refusals and unreadable shares are named in problems;
// shares are checked against the commitments later, when combined.
// `proofs`, if given, holds for each caller the proof of possession of
// the reply key that lets a node accept the certificate again (a retry).
std::vector<NamedShare> ReleaseShares(const std::vector<NodeCaller*>& callers,
                                      const SignedManifest& sm, ByteSpan certificate,
                                      const BoxKeyPair& reply_key,
                                      std::vector<std::string>* problems,
                                      const std::vector<Bytes>* proofs = nullptr,
                                      Executor* executor = ThreadExecutor::Default());

}  // namespace qv

#endif  // QV_COORDINATOR_NODE_IO_H_
