// The catalog (issue 17): `qv list`, `show`, `diff` and `verify`, and the
// names a backup goes by wherever one is asked for: its whole id, a unique
// prefix of it (4 or more hex digits), `latest`, or `latest:NAME`. None of
// these needs a quorum: they read only signed manifests, checked against
// the pinned coordinator key (a cluster) or their own signer (--local).
// Kept apart from main.cc.
#ifndef QV_CLI_CATALOG_CMD_H_
#define QV_CLI_CATALOG_CMD_H_

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "coordinator/local_store.h"
#include "manifest/manifest.h"

namespace qv {

// Where backups are listed: a development folder or a cluster.
struct CatalogSource {
  std::string local, cluster, key;
};

// The signed manifests of a local layout or of a cluster's nodes.
struct ManifestSource {
  std::unique_ptr<LocalStore> store;
  ClusterCtx cluster;
  Result<std::vector<ClusterSession::Listed>> List();
  Result<SignedManifest> Get(const BackupId& id, std::vector<std::string>* problems);
};
Result<ManifestSource> OpenManifests(const CatalogSource& where);

// A backup named as a user may name it, among `ids` (whose manifests `get`
// reads when a name or `latest` must be matched). A whole id is taken as
// it is, without a listing.
Result<BackupId> ResolveBackup(const std::string& text, const std::vector<BackupId>& ids,
                               const std::function<Result<SignedManifest>(const BackupId&)>& get);
// The same, listing `source` (or a cluster's nodes) only when `text` is
// not a whole id.
Result<BackupId> ResolveBackup(const std::string& text, ManifestSource& source);
Result<BackupId> ResolveBackup(const std::string& text, ClusterSession& session);

struct ListArgs {
  CatalogSource src;
  std::string name, tag, since;
  bool json = false;
};
struct ShowArgs {
  CatalogSource src;
  std::string backup;
  bool json = false;
};
struct DiffArgs {
  CatalogSource src;
  std::string a, b;
  bool json = false;
};
struct VerifyArgs {
  CatalogSource src;
  std::string backup, path;
  bool json = false;
};
struct CatalogArgs {
  ListArgs list;
  ShowArgs show;
  DiffArgs diff;
  VerifyArgs verify;
};
struct CatalogCommands {
  CLI::App *list, *show, *diff, *verify;
};

CatalogCommands AddCatalogCommands(CLI::App& app, CatalogArgs& args);
int CmdList(const ListArgs& args);
int CmdShow(const ShowArgs& args);
int CmdDiff(const DiffArgs& args);
int CmdVerify(const VerifyArgs& args);

}  // namespace qv

#endif  // QV_CLI_CATALOG_CMD_H_
