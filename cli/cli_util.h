// Helpers every `qv` command shares: one-line errors with outside text
// escaped, sizes and durations, progress on a terminal, and opening a
// cluster as a key. Not thread-safe where they print.
#ifndef QV_CLI_CLI_UTIL_H_
#define QV_CLI_CLI_UTIL_H_

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/text.h"
#include "coordinator/cluster.h"
#include "coordinator/pipeline.h"
#include "crypto/identity.h"
#include "crypto/pkcs11.h"
#include "quorum/armor.h"
#include "quorum/request.h"

namespace qv {

inline constexpr const char* kVersion = "qv 0.1.0";

// The words every help page may use, defined once.
inline constexpr std::string_view kConcepts =
    "Words used here:\n"
    "  custodian   a person whose signed approval counts toward a restore; listed with a key\n"
    "              in the cluster file and fixed into each backup's signed policy\n"
    "  requester   (the operator) asks for a restore, and alone may present the approvals\n"
    "  quorum      how many distinct custodians must approve (M of the N listed); one\n"
    "              custodian's denial vetoes\n"
    "  k, m, t     k data + m parity fragments, one per node (any k rebuild the data); the\n"
    "              key is split into shares, one per node, and any t of them rebuild it\n";

// Usage: exactly one of --local DIR and --cluster FILE is given.
Status LocalOrCluster(const std::string& local, const std::string& cluster);

// Prints "qv: error: ..." (escaped, line by line) and returns exit status 1;
// with JSON errors on (--json), also the error as JSON on stdout.
int Fail(const Status& s);
void SetJsonErrors(bool on);
// The same for a usage mistake the parser could not see (two ways of
// saying where, neither): "Run with --help", and exit status 2.
int FailUsage(const Status& s);
void PrintJsonError(std::string code, const std::string& message);
void Warn(const std::string& what);
// Text from outside, ready for printf("%s").
struct Shown {
  explicit Shown(std::string_view text) : s(Printable(text)) {}
  const char* c_str() const { return s.c_str(); }
  std::string s;
};
std::string FormatSeconds(int64_t s);
Result<uint64_t> ParseSize(const std::string& text);
Result<int64_t> ParseDuration(const std::string& text);
// A time as --since takes it: an age before `now` (30m, 12h, 7d), a date
// (2026-12-01: that day's start, UTC) or a time (2026-12-01T13:38:43Z).
Result<int64_t> ParseTimeOrAge(const std::string& text, int64_t now);
std::string Rfc3339(int64_t t);  // "2026-12-01T13:38:43Z"

// Throttled progress on stderr, only on a terminal.
class Progress {
 public:
  Progress(std::string label, bool enabled);
  ~Progress();
  ProgressFn fn();
  // Clears the line, so what is printed next starts clean.
  void Clear();

 private:
  std::string label_;
  bool enabled_;
  bool drew_ = false;
  std::chrono::steady_clock::time_point start_, last_{};
};

// --key, else NAME beside the cluster file.
std::string KeyBeside(const std::string& cluster, const std::string& key, const char* name);

// A request or approval file as written, or armored (quorum/armor.h);
// `kind` is kArmorRequest or kArmorApproval. Errors name the file.
Result<Bytes> ReadSignedFile(const std::string& path, std::string_view kind);
// Writes it (0600), armored when `armor`.
Status WriteSignedFile(const std::string& path, std::string_view kind, ByteSpan bytes, bool armor);

// A request file and approval files, as a certificate; errors name the file.
Result<Certificate> LoadCertificate(const std::string& request,
                                    const std::vector<std::string>& approvals);

// A session on the token `uri` names, logged in with the URI's PIN, else
// QV_PKCS11_PIN, else one typed at a prompt on the terminal (not echoed,
// kept in secure memory).
Result<std::unique_ptr<Pkcs11Session>> OpenToken(const Pkcs11Uri& uri);

// A principal's key as --key names it: a key file, or the PKCS#11 URI of a
// key `qv keygen --pkcs11` made (crypto/pkcs11.h). Moveable, not copyable.
class KeyRef {
 public:
  static Result<KeyRef> Load(const std::string& spec);
  // Signs requests and approvals (inside the token for a token key).
  const Signer& signer() const;
  const PublicKey& public_key() const { return signer().public_key(); }
  // Proves this principal on the node channels: the key file itself, or
  // the channel key stored in the token beside the signing key.
  const SigningKey* channel() const { return channel_.get(); }
  bool in_token() const { return token_ != nullptr; }

 private:
  std::unique_ptr<Pkcs11Signer> token_;
  std::unique_ptr<SigningKey> channel_;
};

struct ClusterCtx {
  KeyRef key;
  std::unique_ptr<ClusterSession> session;
};
// Connects to every node as --key (default: `default_key` beside the
// cluster file: the coordinator's, or the operator's for requesters).
Result<ClusterCtx> OpenCluster(const std::string& cluster, const std::string& key,
                               const char* default_key = "coordinator.key");

}  // namespace qv

#endif  // QV_CLI_CLI_UTIL_H_
