#include "crypto/sha256.h"

#include <gtest/gtest.h>

namespace qv {
namespace {

TEST(Sha256Test, MatchesFipsKnownAnswers) {
  EXPECT_EQ(HexEncode(Sha256Of(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha256Of({})),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.Update(AsBytes("abcdbcdecdefdefgefghfghighij"));
  h.Update(AsBytes("hijkijkljklmklmnlmnomnopnopq"));
  EXPECT_EQ(HexEncode(h.Finish()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Finish resets: the hasher is reusable.
  h.Update(AsBytes("abc"));
  EXPECT_EQ(h.Finish(), Sha256Of(AsBytes("abc")));
}

TEST(MerkleTest, LeafAndNodeHashesAreDomainSeparated) {
  Digest leaf = MerkleLeafHash(AsBytes("x"));
  EXPECT_NE(leaf, Sha256Of(AsBytes("x")));
  // A single leaf is its own root.
  EXPECT_EQ(MerkleRoot({leaf}), leaf);
}

TEST(MerkleTest, TreeGivesTheRootAndProofsOfTheRecursiveDefinition) {
  for (size_t n : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 129}) {
    std::vector<Digest> leaves;
    for (size_t i = 0; i < n; ++i) leaves.push_back(MerkleLeafHash(AsBytes(std::to_string(i))));
    const MerkleTree tree(leaves);
    EXPECT_EQ(tree.Root(), MerkleRoot(leaves)) << n;
    for (size_t i = 0; i < n; ++i)
      EXPECT_EQ(tree.Proof(i), MerkleProof(leaves, i)) << n << " " << i;
    EXPECT_TRUE(tree.Proof(n).empty());
  }
}

TEST(MerkleTest, EveryLeafProvesAgainstTheRootForManyTreeSizes) {
  for (size_t n = 1; n <= 33; ++n) {
    std::vector<Digest> leaves;
    for (size_t i = 0; i < n; ++i) leaves.push_back(MerkleLeafHash(AsBytes(std::to_string(i))));
    Digest root = MerkleRoot(leaves);
    for (size_t i = 0; i < n; ++i) {
      auto proof = MerkleProof(leaves, i);
      EXPECT_TRUE(VerifyMerkleProof(root, leaves[i], i, n, proof)) << n << " " << i;
      // The proof does not transfer to another position or leaf.
      if (n > 1) {
        EXPECT_FALSE(VerifyMerkleProof(root, leaves[i], (i + 1) % n, n, proof)) << n << " " << i;
        EXPECT_FALSE(VerifyMerkleProof(root, leaves[(i + 1) % n], i, n, proof)) << n << " " << i;
      }
      if (!proof.empty()) {
        proof.back()[0] ^= 1;
        EXPECT_FALSE(VerifyMerkleProof(root, leaves[i], i, n, proof));
      }
    }
  }
}

TEST(MerkleTest, RootChangesWhenAnyLeafChangesOrMoves) {
  std::vector<Digest> leaves;
  for (int i = 0; i < 7; ++i) leaves.push_back(MerkleLeafHash(AsBytes(std::to_string(i))));
  Digest root = MerkleRoot(leaves);
  for (size_t i = 0; i < leaves.size(); ++i) {
    auto changed = leaves;
    changed[i][5] ^= 0x40;
    EXPECT_NE(MerkleRoot(changed), root);
  }
  auto swapped = leaves;
  std::swap(swapped[2], swapped[3]);
  EXPECT_NE(MerkleRoot(swapped), root);
  auto shorter = leaves;
  shorter.pop_back();
  EXPECT_NE(MerkleRoot(shorter), root);
}

}  // namespace
}  // namespace qv
