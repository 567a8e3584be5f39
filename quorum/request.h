// Quorum requests, custodian approvals and certificates.
//
// A requester (listed in the cluster file) signs a QuorumRequest that binds
// the operation, the backup and its manifest hash, the requester's identity,
// a one-time X25519 reply key (released shares are sealed to it), purpose,
// destination, creation and expiry times and a random nonce. Its id is the
// BLAKE2b hash of its canonical bytes. Custodians sign Approvals (approve or
// deny) over that id. A certificate is the request plus approvals; whether it
// is enough is decided by VerifyCertificate (quorum/verify.h), not here.
//
// Encodings (base/wire.h, canonical):
//   request:     "QVRQ" | body | Ed25519 signature over kRequestContext | body
//   approval:    "QVAP" | body | Ed25519 signature over kApprovalContext | body
//   certificate: "QVQC" | blob(request) | u32 count | count x blob(approval)
// Parsing checks magic, version, bounds and (for requests) the requester's
// signature; approval signatures are checked by the verifier so a refusal
// can name the custodian whose signature is bad. All types are values.
#ifndef QV_QUORUM_REQUEST_H_
#define QV_QUORUM_REQUEST_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/clock.h"
#include "base/status.h"
#include "crypto/identity.h"
#include "crypto/sha256.h"
#include "manifest/manifest.h"

namespace qv {

using RequestId = std::array<uint8_t, 32>;
using ReplyKey = std::array<uint8_t, 32>;  // X25519 public key

inline constexpr std::string_view kRequestContext = "quorumvault/request/v1";
inline constexpr std::string_view kRequestIdDomain = "quorumvault/request-id/v1";
inline constexpr std::string_view kApprovalContext = "quorumvault/approval/v1";
inline constexpr size_t kMaxPurpose = 1024;
inline constexpr size_t kMaxLabel = 256;
inline constexpr size_t kMaxNote = 1024;
inline constexpr size_t kMaxApprovals = 64;
// Signed times must be plausible (base/clock.h: kMinPlausibleUnix ..).

struct QuorumRequest {
  static constexpr uint32_t kVersion = 1;
  std::string operation = "restore";
  BackupId backup_id{};
  std::string backup_name;  // Printable(manifest's artifact_name): what custodians read
  Digest manifest_hash{};
  std::string requester_id;
  PublicKey requester_key{};
  ReplyKey reply_key{};
  std::string purpose;
  std::string destination;
  int64_t created_unix = 0;
  int64_t expires_unix = 0;
  std::array<uint8_t, 16> nonce{};

  Bytes CanonicalBody() const;
  // Field sizes, plausible times, and human-readable fields free of control
  // characters and invalid UTF-8 (base/text.h), naming the bad field.
  Status Validate() const;
};

class SignedRequest {
 public:
  // `key` must be the requester's (its public half is requester_key).
  static Result<SignedRequest> Sign(const QuorumRequest& request, const Signer& key);
  static Result<SignedRequest> Parse(ByteSpan encoded);

  const QuorumRequest& request() const { return request_; }
  const Bytes& encoded() const { return encoded_; }
  const RequestId& id() const { return id_; }

 private:
  QuorumRequest request_;
  Bytes encoded_;
  RequestId id_{};
};

struct Approval {
  static constexpr uint32_t kVersion = 1;
  RequestId request_id{};
  bool approve = true;  // false: a recorded refusal
  std::string custodian_id;
  PublicKey custodian_key{};
  int64_t signed_unix = 0;
  std::string note;
  Signature signature{};

  Bytes CanonicalBody() const;
  Status VerifySignature() const;  // over kApprovalContext | body
  Status Validate() const;         // as QuorumRequest::Validate, for id and note
  Bytes Encode() const;
  static Result<Approval> Parse(ByteSpan encoded);
  // Signs `request` as `custodian_id` with `key`; refuses (naming the
  // limit) an approval that Parse would refuse.
  static Result<Approval> Sign(const SignedRequest& request, const Signer& key,
                               std::string custodian_id, bool approve, std::string note,
                               int64_t now);
};

struct Certificate {
  SignedRequest request;
  std::vector<Approval> approvals;

  Bytes Encode() const;
  static Result<Certificate> Parse(ByteSpan encoded);
};

std::string RequestIdToText(const RequestId& id);

}  // namespace qv

#endif  // QV_QUORUM_REQUEST_H_
