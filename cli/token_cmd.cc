#include "cli/token_cmd.h"

#include <toml++/toml.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "base/crash_point.h"
#include "base/file_util.h"
#include "cli/cli_util.h"
#include "configs/cluster_config.h"
#include "crypto/pkcs11.h"
#include "crypto/secret.h"
#include "node/node.h"

namespace qv {

namespace fs = std::filesystem;

CLI::App* AddKeygenCommand(CLI::App& app, KeygenArgs& a) {
  auto* k = app.add_subcommand("keygen", "Create an Ed25519 identity: a key file, or in a token");
  auto* out = k->add_option("--out", a.out, "secret key file to create (0600, never overwritten)");
  auto* uri = k->add_option("--pkcs11", a.uri,
                            "make the key inside a PKCS#11 token (HSM) instead, RFC 7512: "
                            "pkcs11:token=LABEL;object=LABEL[?module-path=...]");
  out->excludes(uri);
  k->footer(
      "With --out, prints the public key (ed25519:<hex>) for cluster files and --signer.\n"
      "With --pkcs11, the signing key is made inside the token and never leaves it (custodians\n"
      "and requesters sign requests and approvals with --key pkcs11:...). A token cannot do the\n"
      "X25519 the node channels need, so a second key, the channel key, is stored private in the\n"
      "token beside it: it only proves who lists and posts; every signature is the token's.\n"
      "Prints the two lines for the principal's [[custodians]] or [[requesters]] entry:\n"
      "  public_key = \"ed25519:...\"\n  channel_key = \"ed25519:...\"\n"
      "The user PIN comes from pin-value in the URI, QV_PKCS11_PIN, or a prompt.\n"
      "Example (SoftHSM2):\n"
      "  softhsm2-util --init-token --free --label alice --pin 1234 --so-pin 5678\n"
      "  qv keygen --pkcs11 'pkcs11:token=alice;object=custodian'");
  return k;
}

int CmdKeygen(const KeygenArgs& a) {
  if (a.out.empty() == a.uri.empty()) {
    return FailUsage(
        InvalidArgument("give --out FILE, or --pkcs11 URI to make the key in a token"));
  }
  if (!a.out.empty()) {
    auto key = SigningKey::Generate();
    if (!key.ok()) return Fail(key.status());
    if (Status s = (*key)->Save(a.out); !s.ok()) return Fail(s);
    std::printf("%s\n", PublicKeyToText((*key)->public_key()).c_str());
    return 0;
  }
  auto uri = Pkcs11Uri::Parse(a.uri);
  if (!uri.ok()) return Fail(uri.status().WithContext("--pkcs11"));
  auto session = OpenToken(*uri);
  if (!session.ok()) return Fail(session.status());
  auto pk = (*session)->GenerateSigningKey(uri->object);
  if (!pk.ok()) return Fail(pk.status());
  // Read back as every later command will, so a key that cannot sign (or a
  // channel key that cannot be read) is found now.
  auto signer = Pkcs11Signer::New(std::move(session).value(), uri->object);
  if (!signer.ok()) return Fail(signer.status());
  auto channel = (*signer)->ChannelKey();
  if (!channel.ok()) return Fail(channel.status());
  if (auto sig = (*signer)->SignMessage(AsBytes("quorumvault keygen self-test")); !sig.ok()) {
    return Fail(sig.status().WithContext("the new key does not sign"));
  }
  std::printf("public_key = \"%s\"\nchannel_key = \"%s\"\n", PublicKeyToText(*pk).c_str(),
              PublicKeyToText((*channel)->public_key()).c_str());
  return 0;
}

CLI::App* AddWrapMasterCommand(CLI::App& node, WrapMasterArgs& a) {
  auto* w = node.add_subcommand("wrap-master-key",
                                "Put a node's master key under a key in a PKCS#11 token (HSM)");
  w->add_option("--config", a.config, "node file (node.toml); the node must be stopped")
      ->required();
  w->add_option("--pkcs11", a.uri,
                "the token's AES key, RFC 7512: pkcs11:token=LABEL;object=LABEL"
                "[?module-path=/usr/lib/softhsm/libsofthsm2.so]")
      ->required();
  w->footer(
      "Creates the AES-256 key in the token if it is not there (sensitive, never extractable),\n"
      "writes MASTER.wrapped, points node.toml at it (master_key_pkcs11), then erases the plain\n"
      "master key. From then on the node starts only with the token present and its user PIN in\n"
      "QV_PKCS11_PIN (or pin-value in the URI): a copy of its disk and config opens nothing.\n"
      "Interrupted (a crash, a power cut)? Run it again: it finishes the move.");
  return w;
}

namespace {

// A wrap that was cut off after node.toml pointed at the wrapped key but
// before the plain key was erased: the plain key is erased now, once the
// token is shown to open the wrapped key to the very same bytes.
int FinishWrap(const WrapMasterArgs& a, const NodeConfig& nc) {
  const std::string wrapped_file = nc.master_key_file.string();
  const std::string suffix = ".wrapped";
  const fs::path plain =
      wrapped_file.size() > suffix.size() &&
              wrapped_file.compare(wrapped_file.size() - suffix.size(), suffix.size(), suffix) == 0
          ? fs::path(wrapped_file.substr(0, wrapped_file.size() - suffix.size()))
          : fs::path();
  std::error_code ec;
  if (plain.empty() || !fs::exists(plain, ec)) {
    return Fail(FailedPrecondition(a.config + ": the master key is already wrapped by " +
                                   nc.master_key_pkcs11));
  }
  auto master = ReadSecretFile(plain, 32);
  if (!master.ok()) return Fail(master.status());
  auto uri = Pkcs11Uri::Parse(nc.master_key_pkcs11);
  if (!uri.ok()) return Fail(uri.status());
  auto wrapped = ReadFileBytes(wrapped_file, 4096);
  if (!wrapped.ok()) return Fail(wrapped.status());
  auto session = OpenToken(*uri);
  if (!session.ok()) return Fail(session.status());
  auto back = (*session)->Unwrap(uri->object, *wrapped, AsBytes(MasterKeyContext(nc.id)));
  if (!back.ok() || !back->Equals(*master)) {
    return Fail(FailedPrecondition(plain.string() + " is left from an interrupted wrap but is not "
                                                    "the key the token opens; nothing erased"));
  }
  if (Status st = RemoveSecretFile(plain); !st.ok()) return Fail(st);
  std::printf("finished an interrupted wrap of %s: erased %s\n", Shown(nc.id).c_str(),
              Shown(plain.string()).c_str());
  return 0;
}

}  // namespace

int CmdWrapMaster(const WrapMasterArgs& a) {
  auto nc = NodeConfig::Load(a.config);
  if (!nc.ok()) return Fail(nc.status());
  if (!nc->master_key_pkcs11.empty()) return FinishWrap(a, *nc);
  auto uri = Pkcs11Uri::Parse(a.uri);
  if (!uri.ok()) return Fail(uri.status().WithContext("--pkcs11"));
  auto master = ReadSecretFile(nc->master_key_file, 32);
  if (!master.ok()) return Fail(master.status());
  auto session = OpenToken(*uri);
  if (!session.ok()) return Fail(session.status());
  if (Status st = (*session)->GenerateWrappingKey(uri->object);
      !st.ok() && st.code() != StatusCode::kAlreadyExists) {
    return Fail(st);
  }
  CrashPoint("wrap:after-token-key");
  auto wrapped = (*session)->Wrap(uri->object, *master, AsBytes(MasterKeyContext(nc->id)));
  if (!wrapped.ok()) return Fail(wrapped.status());
  // Proven to open before anything changes.
  auto back = (*session)->Unwrap(uri->object, *wrapped, AsBytes(MasterKeyContext(nc->id)));
  if (!back.ok() || !back->Equals(*master)) {
    return Fail(Internal("the token did not give the master key back; nothing changed"));
  }
  // Order, so a crash loses nothing: the wrapped key, then the node file
  // pointing at it (each atomic), then the plain key erased.
  const fs::path wrapped_file = nc->master_key_file.string() + ".wrapped";
  if (Status st = WriteFileAtomic(wrapped_file, *wrapped, 0600); !st.ok()) return Fail(st);
  CrashPoint("wrap:after-wrapped-file");
  toml::table root;
  try {
    root = toml::parse_file(a.config);
  } catch (const toml::parse_error& e) {
    return Fail(InvalidArgument(a.config + ": " + std::string(e.description())));
  }
  toml::table* node = root["node"].as_table();
  if (node == nullptr) return Fail(InvalidArgument(a.config + ": no [node] table"));
  const std::string was = node->get("master_key_file")->value_or(std::string());
  node->insert_or_assign("master_key_file", was + ".wrapped");
  node->insert_or_assign("master_key_pkcs11", a.uri);
  std::ostringstream text;
  text << root << "\n";
  if (Status st = WriteFileAtomic(a.config, AsBytes(text.str()), 0644); !st.ok()) return Fail(st);
  CrashPoint("wrap:after-node-file");
  if (Status st = RemoveSecretFile(nc->master_key_file); !st.ok()) {
    Warn("the plain master key could not be erased: " + st.ToString());
  }
  std::printf("master key of %s wrapped by %s: wrote %s, updated %s, erased %s\n",
              Shown(nc->id).c_str(), Shown(a.uri).c_str(), Shown(wrapped_file.string()).c_str(),
              Shown(a.config).c_str(), Shown(nc->master_key_file.string()).c_str());
  return 0;
}

}  // namespace qv
