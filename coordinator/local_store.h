// The --local development layout: one folder per future node under DIR.
//
//   DIR/node-NN/node.key                  32-byte master key (0600)
//   DIR/node-NN/backups/ID/fragment       units of fragment NN, stripe order
//   DIR/node-NN/backups/ID/leaves         the fragment's Merkle leaf hashes
//   DIR/node-NN/backups/ID/share.sealed   share NN+1, secretbox under node.key
//   DIR/node-NN/backups/ID/manifest       the signed manifest
//
// Uploads are written to backups/.ID.partial-* and renamed on Publish, so a
// crash leaves no half backup visible. This mode is a development aid: all
// node folders sit on one machine, so whoever can read DIR can restore.
#ifndef QV_COORDINATOR_LOCAL_STORE_H_
#define QV_COORDINATOR_LOCAL_STORE_H_

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/fragment_store.h"

namespace qv {

class LocalStore : public BackupTarget {
 public:
  // Creates DIR if missing.
  static Result<std::unique_ptr<LocalStore>> Open(const std::filesystem::path& dir);

  // n sinks, fragment f to node-f, all at site "local".
  Result<std::vector<std::unique_ptr<FragmentSink>>> OpenSinks(const BackupId& id, uint32_t n,
                                                               uint32_t unit_size,
                                                               uint64_t stripes) override;

  // Reads every node's copy; all valid copies must agree byte for byte.
  Result<SignedManifest> LoadManifest(const BackupId& id, const PublicKey* expected_signer,
                                      std::vector<std::string>* problems) const;
  // Sources and shares for the nodes of the manifest's placement; what is
  // missing or unreadable is appended to `problems` and skipped.
  std::vector<std::unique_ptr<FragmentSource>> OpenSources(
      const SignedManifest& m, std::vector<std::string>* problems) const;
  std::vector<NamedShare> ReadShares(const SignedManifest& m,
                                     std::vector<std::string>* problems) const;

  // Backup ids present in any node folder.
  std::vector<BackupId> ListBackups() const;

  static std::string NodeName(uint32_t fragment);

 private:
  explicit LocalStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

}  // namespace qv

#endif  // QV_COORDINATOR_LOCAL_STORE_H_
