#include "node/audit_record.h"

#include <algorithm>
#include <map>

#include "base/clock.h"
#include "base/wire.h"
#include "crypto/kdf.h"

namespace qv {

namespace {

constexpr std::string_view kEntryDomain = "quorumvault/audit-entry/v1";
constexpr std::string_view kEntryDomainV2 = "quorumvault/audit-entry/v2";
constexpr std::string_view kCheckpointContext = "quorumvault/checkpoint/v1";
constexpr std::string_view kWitnessContext = "quorumvault/witness/v1";
constexpr uint32_t kEntryListMarker = 0xFFFFFFFF;

void WriteCheckpoint(WireWriter& w, const Checkpoint& c) {
  w.Str(c.node_id).U64(c.seq).Fixed(c.head).I64(c.time).Fixed(c.signature);
}

Result<Checkpoint> ReadCheckpoint(WireReader& r) {
  Checkpoint c;
  QV_ASSIGN_OR_RETURN(c.node_id, r.Str(128));
  QV_ASSIGN_OR_RETURN(c.seq, r.U64());
  QV_ASSIGN_OR_RETURN(c.head, r.Fixed<32>());
  QV_ASSIGN_OR_RETURN(c.time, r.I64());
  QV_ASSIGN_OR_RETURN(c.signature, r.Fixed<kSignatureSize>());
  return c;
}

}  // namespace

std::optional<std::string> AuditEvent::Get(std::string_view key) const {
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return std::nullopt;
}

AuditFields CanonicalFields(AuditFields fields) {
  std::stable_sort(fields.begin(), fields.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  AuditFields out;
  for (auto& [k, v] : fields) {
    if (k.empty() || k.size() > kMaxAuditKey) continue;
    if (!out.empty() && out.back().first == k) continue;
    if (out.size() == kMaxAuditFields) break;
    if (v.size() > kMaxAuditField) v.resize(kMaxAuditField);
    out.emplace_back(std::move(k), std::move(v));
  }
  return out;
}

Bytes EncodeAuditFields(const AuditFields& fields) {
  WireWriter w;
  w.U32(static_cast<uint32_t>(fields.size()));
  for (const auto& [k, v] : fields) w.Str(k).Str(v);
  return w.Take();
}

namespace {

Result<AuditFields> ReadFields(WireReader& r) {
  QV_ASSIGN_OR_RETURN(uint32_t n, r.U32());
  if (n > kMaxAuditFields) return InvalidArgument("too many audit fields");
  AuditFields out;
  for (uint32_t i = 0; i < n; ++i) {
    QV_ASSIGN_OR_RETURN(std::string k, r.Str(kMaxAuditKey));
    QV_ASSIGN_OR_RETURN(std::string v, r.Str(kMaxAuditField));
    if (!out.empty() && !(out.back().first < k)) {
      return InvalidArgument("audit fields out of order");
    }
    out.emplace_back(std::move(k), std::move(v));
  }
  return out;
}

}  // namespace

Result<AuditFields> DecodeAuditFields(ByteSpan data) {
  WireReader r(data);
  QV_ASSIGN_OR_RETURN(AuditFields f, ReadFields(r));
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  return f;
}

ChainHash AuditEntry::ComputeHash() const {
  WireWriter w;
  w.U64(seq).I64(time).Str(event.kind).Str(event.peer).Str(event.backup).Str(event.request);
  w.Str(event.detail);
  if (version == 1) {
    w.Fixed(prev);
    return DomainHash(kEntryDomain, w.bytes());
  }
  w.U32(static_cast<uint32_t>(event.fields.size()));
  for (const auto& [k, v] : event.fields) w.Str(k).Str(v);
  w.Fixed(prev);
  return DomainHash(kEntryDomainV2, w.bytes());
}

Bytes Checkpoint::SignedBytes() const {
  WireWriter w;
  w.Str(node_id).U64(seq).Fixed(head).I64(time);
  return ContextMessage(kCheckpointContext, w.bytes());
}

Status Checkpoint::Verify(const PublicKey& node_key) const {
  // Entries count from 1: a checkpoint of entry 0 checkpoints nothing, and
  // every reader would index entry seq-1.
  if (seq == 0) return InvalidArgument("checkpoint at entry 0");
  if (!PlausibleUnix(time)) return InvalidArgument("checkpoint with an implausible time");
  return qv::VerifySignature(node_key, SignedBytes(), signature);
}

Bytes WitnessRecord::SignedBytes() const {
  WireWriter w;
  w.Str(witness);
  WriteCheckpoint(w, checkpoint);
  return ContextMessage(kWitnessContext, w.bytes());
}

Status WitnessRecord::Verify(const PublicKey& witness_key, const PublicKey& subject_key) const {
  QV_RETURN_IF_ERROR(checkpoint.Verify(subject_key));
  return qv::VerifySignature(witness_key, SignedBytes(), countersignature);
}

namespace {

// Lists on the wire: a u32 count, then the items. Every item takes at least
// 64 bytes, which bounds the count a reader believes before allocating.
template <typename T, typename WriteOne>
Bytes EncodeList(const std::vector<T>& items, WriteOne write_one) {
  WireWriter w;
  w.U32(static_cast<uint32_t>(items.size()));
  for (const auto& item : items) write_one(w, item);
  return w.Take();
}

template <typename T, typename ReadOne>
Result<std::vector<T>> DecodeList(ByteSpan data, std::string_view what, ReadOne read_one) {
  WireReader r(data);
  QV_ASSIGN_OR_RETURN(uint32_t n, r.U32());
  if (n > data.size() / 64) return InvalidArgument(std::string(what) + " count out of range");
  std::vector<T> out;
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    QV_ASSIGN_OR_RETURN(T item, read_one(r));
    out.push_back(std::move(item));
  }
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

}  // namespace

Bytes EncodeEntries(const std::vector<AuditEntry>& entries) {
  WireWriter head;
  head.U32(kEntryListMarker).U32(AuditEntry::kVersion);
  Bytes out = head.Take();
  AppendBytes(out, EncodeList(entries, [](WireWriter& w, const AuditEntry& e) {
                w.U32(e.version).U64(e.seq).I64(e.time).Str(e.event.kind).Str(e.event.peer);
                w.Str(e.event.backup).Str(e.event.request).Str(e.event.detail);
                w.U32(static_cast<uint32_t>(e.event.fields.size()));
                for (const auto& [k, v] : e.event.fields) w.Str(k).Str(v);
                w.Fixed(e.prev).Fixed(e.hash);
              }));
  return out;
}

Result<std::vector<AuditEntry>> DecodeEntries(ByteSpan data) {
  WireReader marker(data);
  auto first = marker.U32();
  const bool v2 = first.ok() && *first == kEntryListMarker;
  if (v2) {
    QV_ASSIGN_OR_RETURN(uint32_t version, marker.U32());
    if (version != 2) return InvalidArgument("audit entry list version " + std::to_string(version));
    data = data.subspan(8);
  }
  return DecodeList<AuditEntry>(data, "audit entry", [v2](WireReader& r) -> Result<AuditEntry> {
    AuditEntry e;
    e.version = 1;
    if (v2) {
      QV_ASSIGN_OR_RETURN(e.version, r.U32());
      if (e.version != 1 && e.version != 2) return InvalidArgument("audit entry version");
    }
    QV_ASSIGN_OR_RETURN(e.seq, r.U64());
    QV_ASSIGN_OR_RETURN(e.time, r.I64());
    QV_ASSIGN_OR_RETURN(e.event.kind, r.Str(kMaxAuditField));
    QV_ASSIGN_OR_RETURN(e.event.peer, r.Str(kMaxAuditField));
    QV_ASSIGN_OR_RETURN(e.event.backup, r.Str(kMaxAuditField));
    QV_ASSIGN_OR_RETURN(e.event.request, r.Str(kMaxAuditField));
    QV_ASSIGN_OR_RETURN(e.event.detail, r.Str(kMaxAuditField));
    if (v2) {
      QV_ASSIGN_OR_RETURN(e.event.fields, ReadFields(r));
      if (e.version == 1 && !e.event.fields.empty()) {
        return InvalidArgument("a v1 audit entry with fields");
      }
    }
    QV_ASSIGN_OR_RETURN(e.prev, r.Fixed<32>());
    QV_ASSIGN_OR_RETURN(e.hash, r.Fixed<32>());
    return e;
  });
}

Bytes EncodeCheckpoints(const std::vector<Checkpoint>& checkpoints) {
  return EncodeList(checkpoints, WriteCheckpoint);
}

Result<std::vector<Checkpoint>> DecodeCheckpoints(ByteSpan data) {
  return DecodeList<Checkpoint>(data, "checkpoint", ReadCheckpoint);
}

Bytes EncodeWitnessRecords(const std::vector<WitnessRecord>& records) {
  return EncodeList(records, [](WireWriter& w, const WitnessRecord& rec) {
    w.Str(rec.witness);
    WriteCheckpoint(w, rec.checkpoint);
    w.Fixed(rec.countersignature);
  });
}

Result<std::vector<WitnessRecord>> DecodeWitnessRecords(ByteSpan data) {
  return DecodeList<WitnessRecord>(
      data, "witness record", [](WireReader& r) -> Result<WitnessRecord> {
        WitnessRecord rec;
        QV_ASSIGN_OR_RETURN(rec.witness, r.Str(128));
        QV_ASSIGN_OR_RETURN(rec.checkpoint, ReadCheckpoint(r));
        QV_ASSIGN_OR_RETURN(rec.countersignature, r.Fixed<kSignatureSize>());
        return rec;
      });
}

std::vector<std::string> VerifyAuditChain(const std::vector<AuditEntry>& entries,
                                          const std::vector<Checkpoint>& checkpoints,
                                          const PublicKey& node_key) {
  std::vector<std::string> problems;
  ChainHash prev{};
  int64_t latest = 0;  // the latest time of any entry so far
  bool clock_flagged = false;
  for (size_t i = 0; i < entries.size(); ++i) {
    const AuditEntry& e = entries[i];
    const std::string at = "entry " + std::to_string(i + 1);
    if (e.seq != i + 1) {
      problems.push_back(at + ": sequence number is " + std::to_string(e.seq) +
                         " (entry deleted or reordered)");
      break;
    }
    if (e.prev != prev) {
      problems.push_back(at +
                         ": does not link to the entry before it (edited, deleted or "
                         "reordered)");
      break;
    }
    if (e.ComputeHash() != e.hash) {
      problems.push_back(at + " (" + e.event.kind + "): contents do not match its hash (edited)");
      break;
    }
    prev = e.hash;
    // A node's clock that jumps back is how a node comes to release what
    // correct nodes refuse; its log shows it. The first such entry is named.
    if (!clock_flagged && (!PlausibleUnix(e.time) || e.time < latest - kAuditTimeTolerance)) {
      problems.push_back(at + " (" + e.event.kind + "): dated " +
                         (PlausibleUnix(e.time) && latest != 0
                              ? std::to_string(latest - e.time) + " s before an earlier entry"
                              : "at an implausible time " + std::to_string(e.time)) +
                         " (the node's clock went backwards)");
      clock_flagged = true;
    }
    latest = std::max(latest, e.time);
  }
  for (const auto& c : checkpoints) {
    const std::string at = "checkpoint at entry " + std::to_string(c.seq);
    if (Status v = c.Verify(node_key); !v.ok()) {
      problems.push_back(at + ": " +
                         (v.code() == StatusCode::kInvalidArgument
                              ? v.message()
                              : std::string("signature does not verify under the node's key")));
    } else if (c.seq > entries.size()) {
      problems.push_back(at + ": the log has only " + std::to_string(entries.size()) +
                         " entries (truncated)");
    } else if (entries[c.seq - 1].hash != c.head) {
      problems.push_back(at + ": signed head differs from the log's entry " +
                         std::to_string(c.seq) + " (history rewritten)");
    }
  }
  return problems;
}

}  // namespace qv
