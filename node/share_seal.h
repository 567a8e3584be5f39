// How a node seals its key shares at rest (internal to node/): under the
// master key, with the signed manifest's hash in the context, so a share
// opens only beside the manifest it was sealed with: a re-signed manifest
// (other custodians, a lower quorum) dropped into the folder cannot make
// the node release. File: "QVS2" | SealSecret(master, context, be32(x) || y).
// Version 1 (no magic, context without the hash) is migrated at open.
#ifndef QV_NODE_SHARE_SEAL_H_
#define QV_NODE_SHARE_SEAL_H_

#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/secret.h"
#include "crypto/sha256.h"
#include "manifest/manifest.h"

namespace qv {

inline constexpr std::string_view kShareMagic = "QVS2";

std::string ShareContext(const BackupId& id, uint32_t x, const Digest& manifest_hash);
std::string ShareContextV1(const BackupId& id, uint32_t x);
bool IsBoundShareFile(ByteSpan sealed);
Result<Bytes> SealShareFile(const SecretBytes& master, const BackupId& id, uint32_t x,
                            const Digest& manifest_hash, const SecretBytes& plain);

}  // namespace qv

#endif  // QV_NODE_SHARE_SEAL_H_
