// SHA-256 through OpenSSL's EVP (SHA-NI where the CPU has it), and the
// Merkle tree built from it.
//
// Sha256 is an incremental hasher: one per thread (not thread-safe); the free
// functions are thread-safe. OpenSSL failures here mean a broken library and
// abort the process rather than return a wrong digest.
#ifndef QV_CRYPTO_SHA256_H_
#define QV_CRYPTO_SHA256_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace qv {

using Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(ByteSpan data);
  // Returns the digest and resets the hasher for reuse.
  Digest Finish();

 private:
  void* ctx_;  // EVP_MD_CTX
};

Digest Sha256Of(ByteSpan data);

// Merkle tree in the style of RFC 6962: leaf = H(0x00 || data),
// node = H(0x01 || left || right), the split at the largest power of two
// below the leaf count. Domain separation keeps a leaf from posing as a node.
Digest MerkleLeafHash(ByteSpan data);
Digest MerkleRoot(const std::vector<Digest>& leaf_hashes);
// Audit path for leaf `index` (siblings from the bottom up).
std::vector<Digest> MerkleProof(const std::vector<Digest>& leaf_hashes, size_t index);
bool VerifyMerkleProof(const Digest& root, const Digest& leaf_hash, size_t index, size_t leaf_count,
                       const std::vector<Digest>& proof);

// The same tree with every level kept (about 2n digests), built once in
// O(n) hashes, so each proof is O(log n) lookups: what a node answering
// many challenges against one fragment needs (MerkleProof rebuilds sibling
// subtrees, O(n) per proof). Levels pair neighbours bottom-up and carry an
// odd last node up unpaired, which gives RFC 6962's tree. Immutable.
class MerkleTree {
 public:
  explicit MerkleTree(std::vector<Digest> leaf_hashes);
  size_t size() const { return levels_.front().size(); }
  const std::vector<Digest>& Level0() const { return levels_.front(); }
  Digest Root() const;
  // As MerkleProof(leaves, index); empty when index is out of range.
  std::vector<Digest> Proof(size_t index) const;

 private:
  std::vector<std::vector<Digest>> levels_;  // levels_[0]: the leaves
};

}  // namespace qv

#endif  // QV_CRYPTO_SHA256_H_
