#include "crypto/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace qv {

namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "fatal: OpenSSL %s failed\n", what);
  std::abort();
}

// Fetched once: implicit fetches on every EVP_DigestInit_ex cost more than
// hashing a small unit.
const EVP_MD* Md() {
  static EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) Die("SHA256 fetch");
    return m;
  }();
  return md;
}

EVP_MD_CTX* Ctx(void* p) { return static_cast<EVP_MD_CTX*>(p); }

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(Ctx(ctx_), Md(), nullptr) != 1) Die("digest init");
}

Sha256::~Sha256() { EVP_MD_CTX_free(Ctx(ctx_)); }

void Sha256::Update(ByteSpan data) {
  if (data.empty()) return;
  if (EVP_DigestUpdate(Ctx(ctx_), data.data(), data.size()) != 1) Die("digest update");
}

Digest Sha256::Finish() {
  Digest d;
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(Ctx(ctx_), d.data(), &len) != 1 || len != d.size()) Die("digest final");
  if (EVP_DigestInit_ex(Ctx(ctx_), Md(), nullptr) != 1) Die("digest init");
  return d;
}

Digest Sha256Of(ByteSpan data) {
  Digest d;
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), d.data(), &len, Md(), nullptr) != 1) Die("digest");
  return d;
}

Digest MerkleLeafHash(ByteSpan data) {
  Sha256 h;
  const uint8_t prefix = 0x00;
  h.Update(ByteSpan(&prefix, 1));
  h.Update(data);
  return h.Finish();
}

namespace {

Digest NodeHash(const Digest& l, const Digest& r) {
  uint8_t buf[65];
  buf[0] = 0x01;
  std::copy(l.begin(), l.end(), buf + 1);
  std::copy(r.begin(), r.end(), buf + 33);
  return Sha256Of(ByteSpan(buf, sizeof buf));
}

size_t SplitPoint(size_t n) {
  size_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

Digest RootOf(const Digest* leaves, size_t n) {
  if (n == 1) return leaves[0];
  size_t k = SplitPoint(n);
  return NodeHash(RootOf(leaves, k), RootOf(leaves + k, n - k));
}

void ProofOf(const Digest* leaves, size_t n, size_t index, std::vector<Digest>& out) {
  if (n <= 1) return;
  size_t k = SplitPoint(n);
  if (index < k) {
    ProofOf(leaves, k, index, out);
    out.push_back(RootOf(leaves + k, n - k));
  } else {
    ProofOf(leaves + k, n - k, index - k, out);
    out.push_back(RootOf(leaves, k));
  }
}

// Recomputes the root; siblings are consumed as the recursion unwinds, which
// is the bottom-up order ProofOf emits them in.
bool Recompute(const Digest& leaf, size_t index, size_t n, const std::vector<Digest>& proof,
               size_t& used, Digest& out) {
  if (n == 1) {
    out = leaf;
    return true;
  }
  size_t k = SplitPoint(n);
  Digest sub;
  if (index < k) {
    if (!Recompute(leaf, index, k, proof, used, sub)) return false;
    if (used >= proof.size()) return false;
    out = NodeHash(sub, proof[used++]);
  } else {
    if (!Recompute(leaf, index - k, n - k, proof, used, sub)) return false;
    if (used >= proof.size()) return false;
    out = NodeHash(proof[used++], sub);
  }
  return true;
}

}  // namespace

Digest MerkleRoot(const std::vector<Digest>& leaf_hashes) {
  if (leaf_hashes.empty()) return Sha256Of({});
  return RootOf(leaf_hashes.data(), leaf_hashes.size());
}

std::vector<Digest> MerkleProof(const std::vector<Digest>& leaf_hashes, size_t index) {
  std::vector<Digest> out;
  if (index < leaf_hashes.size()) ProofOf(leaf_hashes.data(), leaf_hashes.size(), index, out);
  return out;
}

MerkleTree::MerkleTree(std::vector<Digest> leaf_hashes) {
  levels_.push_back(std::move(leaf_hashes));
  while (levels_.back().size() > 1) {
    const std::vector<Digest>& below = levels_.back();
    std::vector<Digest> up;
    up.reserve((below.size() + 1) / 2);
    for (size_t i = 0; i + 1 < below.size(); i += 2) up.push_back(NodeHash(below[i], below[i + 1]));
    if (below.size() % 2 == 1) up.push_back(below.back());
    levels_.push_back(std::move(up));
  }
}

Digest MerkleTree::Root() const {
  return levels_.back().empty() ? Sha256Of({}) : levels_.back().front();
}

std::vector<Digest> MerkleTree::Proof(size_t index) const {
  std::vector<Digest> out;
  if (index >= size()) return out;
  for (size_t l = 0; l + 1 < levels_.size(); ++l, index /= 2) {
    const size_t sibling = index ^ 1;
    if (sibling < levels_[l].size()) out.push_back(levels_[l][sibling]);
  }
  return out;
}

bool VerifyMerkleProof(const Digest& root, const Digest& leaf_hash, size_t index, size_t leaf_count,
                       const std::vector<Digest>& proof) {
  if (index >= leaf_count) return false;
  size_t used = 0;
  Digest got;
  if (!Recompute(leaf_hash, index, leaf_count, proof, used, got)) return false;
  return used == proof.size() && got == root;
}

}  // namespace qv
