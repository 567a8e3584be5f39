#include "node/scrub_wire.h"

#include "base/clock.h"
#include "base/wire.h"
#include "node/messages.h"

namespace qv {

namespace {
constexpr size_t kMaxProofDepth = 64;  // a Merkle path over 2^64 leaves
constexpr size_t kMaxError = 512;
}  // namespace

Bytes EncodeScrubChallenge(const ScrubChallenge& c) {
  WireWriter w;
  w.Fixed(c.nonce).U32(static_cast<uint32_t>(c.items.size()));
  for (const auto& [index, unit] : c.items) w.U64(index).U8(unit ? 1 : 0);
  return w.Take();
}

Result<ScrubChallenge> DecodeScrubChallenge(ByteSpan data) {
  WireReader r(data);
  ScrubChallenge c;
  QV_ASSIGN_OR_RETURN(c.nonce, r.Fixed<32>());
  QV_ASSIGN_OR_RETURN(uint32_t n, r.U32());
  if (n == 0 || n > kScrubMaxIndices) {
    return InvalidArgument("a scrub challenges 1.." + std::to_string(kScrubMaxIndices) + " units");
  }
  uint32_t units = 0;
  for (uint32_t i = 0; i < n; ++i) {
    QV_ASSIGN_OR_RETURN(uint64_t index, r.U64());
    QV_ASSIGN_OR_RETURN(uint8_t want, r.U8());
    if (want > 1) return InvalidArgument("scrub item flag out of range");
    units += want;
    c.items.emplace_back(index, want == 1);
  }
  if (units > kScrubMaxUnits) {
    return InvalidArgument("a scrub asks for at most " + std::to_string(kScrubMaxUnits) +
                           " whole units");
  }
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  return c;
}

Bytes EncodeScrubAnswer(const ScrubAnswer& a) {
  WireWriter w;
  w.U8(a.share_proved ? 1 : 0);
  if (a.share_proved) {
    w.Raw(EncodeShareProof(a.share_proof));
  } else {
    w.Str(a.share_error.substr(0, kMaxError));
  }
  w.U32(static_cast<uint32_t>(a.items.size()));
  for (const auto& it : a.items) {
    w.U64(it.index).U8(it.kind);
    if (it.kind == 0) w.Fixed(it.leaf);
    if (it.kind == 1) w.Blob(it.unit);
    if (it.kind == 2) w.Str(it.error.substr(0, kMaxError));
    w.U32(static_cast<uint32_t>(it.proof.size()));
    for (const auto& d : it.proof) w.Fixed(d);
  }
  return w.Take();
}

Result<ScrubAnswer> DecodeScrubAnswer(ByteSpan data) {
  WireReader r(data);
  ScrubAnswer a;
  QV_ASSIGN_OR_RETURN(uint8_t proved, r.U8());
  if (proved > 1) return InvalidArgument("scrub answer flag out of range");
  a.share_proved = proved == 1;
  if (a.share_proved) {
    QV_ASSIGN_OR_RETURN(ByteSpan p, r.Raw(kShareProofSize));
    QV_ASSIGN_OR_RETURN(a.share_proof, DecodeShareProof(p));
  } else {
    QV_ASSIGN_OR_RETURN(a.share_error, r.Str(kMaxError));
  }
  QV_ASSIGN_OR_RETURN(uint32_t n, r.U32());
  if (n > kScrubMaxIndices) return InvalidArgument("scrub answer has too many items");
  for (uint32_t i = 0; i < n; ++i) {
    ScrubItem it;
    QV_ASSIGN_OR_RETURN(it.index, r.U64());
    QV_ASSIGN_OR_RETURN(it.kind, r.U8());
    if (it.kind == 0) {
      QV_ASSIGN_OR_RETURN(it.leaf, r.Fixed<32>());
    } else if (it.kind == 1) {
      QV_ASSIGN_OR_RETURN(it.unit, r.Blob(kMaxUnitSize));
    } else if (it.kind == 2) {
      QV_ASSIGN_OR_RETURN(it.error, r.Str(kMaxError));
    } else {
      return InvalidArgument("scrub item kind out of range");
    }
    QV_ASSIGN_OR_RETURN(uint32_t m, r.U32());
    if (m > kMaxProofDepth) return InvalidArgument("scrub proof too long");
    for (uint32_t j = 0; j < m; ++j) {
      QV_ASSIGN_OR_RETURN(Digest d, r.Fixed<32>());
      it.proof.push_back(d);
    }
    a.items.push_back(std::move(it));
  }
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  return a;
}

Bytes ScrubProofContext(const std::array<uint8_t, 32>& nonce, const std::string& node_id,
                        const BackupId& backup) {
  WireWriter w;
  w.Str("quorumvault/scrub/v1").Fixed(nonce).Str(node_id).Fixed(backup);
  return w.Take();
}

Bytes EncodeCoverage(const ScrubCoverage& c, uint64_t stripes) {
  WireWriter w;
  w.U64(c.cursor).U64(stripes).U64(c.cycle);
  w.U64(static_cast<uint64_t>(c.cycle_started)).U64(static_cast<uint64_t>(c.last_complete));
  return w.Take();
}

Result<std::pair<ScrubCoverage, uint64_t>> DecodeCoverage(ByteSpan d) {
  if (d.size() != 40) return InvalidArgument("scrub coverage must be 40 bytes");
  ScrubCoverage c;
  c.cursor = GetU64BE(d.data());
  const uint64_t stripes = GetU64BE(d.data() + 8);
  c.cycle = GetU64BE(d.data() + 16);
  c.cycle_started = static_cast<int64_t>(GetU64BE(d.data() + 24));
  c.last_complete = static_cast<int64_t>(GetU64BE(d.data() + 32));
  if (stripes == 0 || c.cursor >= stripes ||
      !(c.cycle_started == 0 || PlausibleUnix(c.cycle_started)) ||
      !(c.last_complete == 0 || PlausibleUnix(c.last_complete))) {
    return InvalidArgument("scrub coverage out of range");
  }
  return std::make_pair(c, stripes);
}

}  // namespace qv
