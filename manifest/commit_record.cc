#include "manifest/commit_record.h"

#include <algorithm>

#include "base/clock.h"
#include "base/wire.h"

namespace qv {

namespace {
constexpr std::string_view kMagic = "QVCM";
}  // namespace

Bytes CommitRecord::Body() const {
  WireWriter w;
  w.U32(kVersion).Fixed(backup_id).Fixed(manifest_hash).I64(deadline).I64(signed_unix);
  return w.Take();
}

Bytes CommitRecord::Encode() const {
  WireWriter w;
  w.Raw(AsBytes(kMagic)).Raw(Body()).Fixed(signature);
  return w.Take();
}

Result<CommitRecord> CommitRecord::Parse(ByteSpan encoded) {
  WireReader r(encoded);
  QV_RETURN_IF_ERROR(r.ExpectMagic(kMagic, "commit record"));
  CommitRecord c;
  QV_ASSIGN_OR_RETURN(uint32_t version, r.U32());
  if (version != kVersion) {
    return InvalidArgument("commit record version " + std::to_string(version) +
                           " is not supported");
  }
  QV_ASSIGN_OR_RETURN(c.backup_id, r.Fixed<16>());
  QV_ASSIGN_OR_RETURN(c.manifest_hash, r.Fixed<32>());
  QV_ASSIGN_OR_RETURN(c.deadline, r.I64());
  QV_ASSIGN_OR_RETURN(c.signed_unix, r.I64());
  QV_ASSIGN_OR_RETURN(c.signature, r.Fixed<kSignatureSize>());
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  return c;
}

CommitRecord CommitRecord::Sign(const SigningKey& coordinator, const BackupId& id,
                                const Digest& manifest_hash, int64_t deadline, int64_t now) {
  CommitRecord c;
  c.backup_id = id;
  c.manifest_hash = manifest_hash;
  c.deadline = deadline;
  c.signed_unix = now;
  c.signature = coordinator.Sign(ContextMessage(kCommitContext, c.Body()));
  return c;
}

Status CommitRecord::Verify(const PublicKey& coordinator, const BackupId& id,
                            const Digest& manifest_hash) const {
  if (backup_id != id || this->manifest_hash != manifest_hash) {
    return InvalidArgument("commit record is for another backup or manifest");
  }
  if (!PlausibleUnix(deadline) || !PlausibleUnix(signed_unix)) {
    return InvalidArgument("commit record has implausible times");
  }
  if (signed_unix > deadline) return InvalidArgument("commit record was signed after its deadline");
  return qv::VerifySignature(coordinator, ContextMessage(kCommitContext, Body()), signature);
}

}  // namespace qv
