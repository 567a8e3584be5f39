// NodeStore: the cluster membership this node keeps (node_store.h).
//
//   DATA/membership/first            the first membership's digest (32 bytes)
//   DATA/membership/enrolled-NNNN    the Nth accepted enrollment certificate
//
// Written with WriteFileAtomic (temporary file, fsync, rename, fsync of the
// folder): a crash leaves each file whole or absent. Numbers are dense from
// 1; a gap (a file lost by hand) is an error, never a shorter chain.
#include <cstdio>

#include "base/file_util.h"
#include "configs/cluster_config.h"
#include "node/node_store.h"

namespace qv {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxEnrollments = 255;

fs::path EnrolledPath(const fs::path& dir, size_t n) {
  char name[32];
  std::snprintf(name, sizeof name, "enrolled-%04zu", n);
  return dir / "membership" / name;
}

}  // namespace

Result<std::optional<Digest>> NodeStore::FirstMembership() const {
  const fs::path p = dir_ / "membership" / "first";
  std::error_code ec;
  if (!fs::exists(p, ec)) return std::optional<Digest>();
  QV_ASSIGN_OR_RETURN(Bytes b, ReadFileBytes(p, 64));
  if (b.size() != 32) return Corruption(p.string() + ": not a membership digest");
  Digest d;
  std::copy(b.begin(), b.end(), d.begin());
  return std::optional<Digest>(d);
}

Status NodeStore::SetFirstMembership(const Digest& digest) {
  std::error_code ec;
  fs::create_directories(dir_ / "membership", ec);
  if (ec) return IoError((dir_ / "membership").string() + ": " + ec.message());
  return WriteFileAtomic(dir_ / "membership" / "first", ByteSpan(digest.data(), digest.size()),
                         0600);
}

Result<std::vector<Bytes>> NodeStore::Enrollments() const {
  std::vector<Bytes> out;
  std::error_code ec;
  for (size_t n = 1; n <= kMaxEnrollments + 1; ++n) {
    const fs::path p = EnrolledPath(dir_, n);
    if (!fs::exists(p, ec)) break;
    if (n > kMaxEnrollments) return Corruption("more than 255 enrollments recorded");
    QV_ASSIGN_OR_RETURN(Bytes b, ReadFileBytes(p, kMaxEnrollmentBytes));
    out.push_back(std::move(b));
  }
  // A file past the first gap means one before it was lost.
  size_t files = 0;
  for (auto& e : fs::directory_iterator(dir_ / "membership", ec)) {
    files += e.path().filename().string().rfind("enrolled-", 0) == 0 ? 1 : 0;
  }
  if (files != out.size()) {
    return Corruption((dir_ / "membership").string() + ": enrollment " +
                      std::to_string(out.size() + 1) + " is missing but later ones are kept");
  }
  return out;
}

Status NodeStore::AddEnrollment(ByteSpan certificate) {
  if (certificate.size() > kMaxEnrollmentBytes) return InvalidArgument("enrollment too large");
  QV_ASSIGN_OR_RETURN(std::vector<Bytes> have, Enrollments());
  if (have.size() >= kMaxEnrollments) return FailedPrecondition("255 enrollments recorded");
  std::error_code ec;
  fs::create_directories(dir_ / "membership", ec);
  if (ec) return IoError((dir_ / "membership").string() + ": " + ec.message());
  return WriteFileAtomic(EnrolledPath(dir_, have.size() + 1), certificate, 0600);
}

}  // namespace qv
