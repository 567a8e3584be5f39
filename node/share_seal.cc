#include "node/share_seal.h"

#include <algorithm>

#include "crypto/secretbox.h"

namespace qv {

std::string ShareContext(const BackupId& id, uint32_t x, const Digest& manifest_hash) {
  return "node-share/v2:" + BackupIdToText(id) + ":" + std::to_string(x) + ":" +
         HexEncode(manifest_hash);
}

std::string ShareContextV1(const BackupId& id, uint32_t x) {
  return "node-share:" + BackupIdToText(id) + ":" + std::to_string(x);
}

bool IsBoundShareFile(ByteSpan sealed) {
  return sealed.size() > kShareMagic.size() &&
         std::equal(kShareMagic.begin(), kShareMagic.end(), sealed.begin());
}

Result<Bytes> SealShareFile(const SecretBytes& master, const BackupId& id, uint32_t x,
                            const Digest& manifest_hash, const SecretBytes& plain) {
  QV_ASSIGN_OR_RETURN(Bytes sealed, SealSecret(master, ShareContext(id, x, manifest_hash), plain));
  Bytes out(kShareMagic.begin(), kShareMagic.end());
  AppendBytes(out, sealed);
  return out;
}

}  // namespace qv
