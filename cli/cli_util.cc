#include "cli/cli_util.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>

#include "base/clock.h"
#include "base/file_util.h"
#include "base/json.h"
#include "quorum/armor.h"

namespace qv {

namespace fs = std::filesystem;

// Every message may carry text from outside (file names, node answers,
// request fields): it is printed escaped (base/text.h), never raw.
// Lines are escaped one by one: a multi-line message (a refusal per node)
// keeps its lines, and what each line quotes cannot start another.
namespace {
bool g_json_errors = false;
}  // namespace

int Fail(const Status& s) {
  const std::string text = s.ToString();
  std::string out;
  for (size_t start = 0; start <= text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out += (start == 0 ? "" : "\n") + Printable(std::string_view(text).substr(start, end - start));
    start = end + 1;
  }
  std::fprintf(stderr, "qv: error: %s\n", out.c_str());
  if (g_json_errors) PrintJsonError(std::string(StatusCodeName(s.code())), s.message());
  return 1;
}

void SetJsonErrors(bool on) { g_json_errors = on; }

int FailUsage(const Status& s) {
  std::fprintf(stderr, "qv: error: %s\nRun with --help for more information.\n",
               Printable(s.message()).c_str());
  if (g_json_errors) PrintJsonError("usage", s.message());
  return 2;
}

// {"error": {"code": "permission_denied", "message": "..."}} on stdout: the
// code is the status's name in snake case, stable for scripts.
void PrintJsonError(std::string code, const std::string& message) {
  for (char& c : code) c = c == ' ' ? '_' : c == '/' ? '_' : static_cast<char>(std::tolower(c));
  JsonWriter j;
  j.BeginObject().Key("error").BeginObject().Field("code", code).Field("message", message);
  j.EndObject().EndObject();
  std::printf("%s\n", j.str().c_str());
}

void Warn(const std::string& what) {
  std::fprintf(stderr, "qv: warning: %s\n", Printable(what).c_str());
}

std::string FormatSeconds(int64_t s) {
  if (s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

Result<uint64_t> ParseSize(const std::string& text) {
  size_t pos = 0;
  unsigned long long v = 0;
  // stoull would take "-1" and wrap it to 18 EB.
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) {
    return InvalidArgument("size '" + text + "' is not a number");
  }
  try {
    v = std::stoull(text, &pos);
  } catch (...) {
    return InvalidArgument("size '" + text + "' is not a number");
  }
  std::string unit = text.substr(pos);
  uint64_t mul = 1;
  if (unit.empty() || unit == "B")
    mul = 1;
  else if (unit == "K" || unit == "KiB")
    mul = 1ull << 10;
  else if (unit == "M" || unit == "MiB")
    mul = 1ull << 20;
  else if (unit == "G" || unit == "GiB")
    mul = 1ull << 30;
  else
    return InvalidArgument("size '" + text + "': unit must be B, KiB, MiB or GiB");
  if (v > UINT64_MAX / mul) return InvalidArgument("size '" + text + "' is too large");
  return uint64_t{v} * mul;
}

Progress::Progress(std::string label, bool enabled)
    : label_(std::move(label)),
      enabled_(enabled && ::isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { Clear(); }

void Progress::Clear() {
  if (drew_) std::fprintf(stderr, "\r\033[K");
  drew_ = false;
}

ProgressFn Progress::fn() {
  if (!enabled_) return nullptr;
  return [this](uint64_t done, uint64_t total) {
    auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    double s = std::chrono::duration<double>(now - start_).count();
    double rate = s > 0 ? done / s : 0;
    double eta = rate > 0 ? (total - done) / rate : 0;
    std::fprintf(stderr, "\r\033[K%s %s / %s  %3.0f%%  %.0f MB/s  ETA %.0fs", label_.c_str(),
                 FormatBytes(done).c_str(), FormatBytes(total).c_str(),
                 total ? 100.0 * done / total : 100.0, rate / 1e6, eta);
    drew_ = true;
  };
}

// --key, else NAME beside the cluster file.
std::string KeyBeside(const std::string& cluster, const std::string& key, const char* name) {
  return key.empty() ? (fs::path(cluster).parent_path() / name).string() : key;
}

// Connects to every node as --key (default: `default_key` beside the
// cluster file: the coordinator's, or the operator's for requesters).
Result<ClusterCtx> OpenCluster(const std::string& cluster, const std::string& key,
                               const char* default_key) {
  ClusterCtx c;
  QV_ASSIGN_OR_RETURN(ClusterConfig config, ClusterConfig::Load(cluster));
  auto loaded = KeyRef::Load(KeyBeside(cluster, key, default_key));
  if (!loaded.ok()) return loaded.status().WithContext("--key (or QV_KEY)");
  c.key = std::move(loaded).value();
  QV_ASSIGN_OR_RETURN(c.session, ClusterSession::Open(std::move(config), c.key.channel()));
  return c;
}

Result<std::unique_ptr<Pkcs11Session>> OpenToken(const Pkcs11Uri& uri) {
  if (!uri.pin.empty()) return Pkcs11Session::Open(uri, "");
  if (const char* env = std::getenv("QV_PKCS11_PIN"); env != nullptr && *env != '\0') {
    return Pkcs11Session::Open(uri, env);
  }
  // A prompt, on the terminal only: the PIN is read with echo off, byte by
  // byte into secure memory, and wiped when the session is open.
  const int tty = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (tty < 0) {
    return InvalidArgument("no PIN for token " + uri.token +
                           ": set QV_PKCS11_PIN, or run on a terminal to be asked");
  }
  termios old{};
  const bool restore = ::tcgetattr(tty, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(tty, TCSAFLUSH, &quiet);
  }
  const std::string prompt = "PIN for token " + Printable(uri.token) + ": ";
  (void)!::write(tty, prompt.data(), prompt.size());
  SecretBytes pin(256);
  size_t n = 0;
  char ch = 0;
  while (n < pin.size() && ::read(tty, &ch, 1) == 1 && ch != '\n' && ch != '\r') {
    pin.data()[n++] = static_cast<uint8_t>(ch);
  }
  ch = 0;
  if (restore) ::tcsetattr(tty, TCSAFLUSH, &old);
  (void)!::write(tty, "\n", 1);
  ::close(tty);
  return Pkcs11Session::Open(uri, std::string_view(reinterpret_cast<const char*>(pin.data()), n));
}

Result<KeyRef> KeyRef::Load(const std::string& spec) {
  KeyRef k;
  if (spec.rfind("pkcs11:", 0) != 0) {
    QV_ASSIGN_OR_RETURN(k.channel_, SigningKey::Load(spec));
    return k;
  }
  QV_ASSIGN_OR_RETURN(Pkcs11Uri uri, Pkcs11Uri::Parse(spec));
  QV_ASSIGN_OR_RETURN(auto session, OpenToken(uri));
  QV_ASSIGN_OR_RETURN(k.token_, Pkcs11Signer::New(std::move(session), uri.object));
  auto channel = k.token_->ChannelKey();
  if (!channel.ok()) {
    return channel.status().WithContext("the token's channel key for " + uri.object +
                                        " (made by qv keygen --pkcs11)");
  }
  k.channel_ = std::move(channel).value();
  return k;
}

const Signer& KeyRef::signer() const {
  if (token_ != nullptr) return *token_;
  return *channel_;
}

namespace {

std::string FormatUnix(int64_t t, const char* format) {
  char buf[32];
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

}  // namespace

Result<int64_t> ParseTimeOrAge(const std::string& text, int64_t now) {
  for (const char* format : {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"}) {
    std::tm tm{};
    const char* end = ::strptime(text.c_str(), format, &tm);
    if (end != nullptr && *end == '\0') {
      const int64_t t = ::timegm(&tm);
      if (!PlausibleUnix(t)) return InvalidArgument(text + " is not a time between 2000 and 2200");
      return t;
    }
  }
  auto age = ParseDuration(text);
  if (!age.ok()) {
    return InvalidArgument("'" + text +
                           "' is neither an age (30m, 12h, 7d) nor a time (2026-12-01, "
                           "2026-12-01T13:38:43Z)");
  }
  return now - *age;
}

std::string Rfc3339(int64_t t) { return FormatUnix(t, "%Y-%m-%dT%H:%M:%SZ"); }

Result<Bytes> ReadSignedFile(const std::string& path, std::string_view kind) {
  QV_ASSIGN_OR_RETURN(Bytes bytes, ReadFileBytes(path, kMaxArmoredBytes));
  if (!LooksArmored(bytes)) return bytes;
  auto raw = Dearmor(bytes, kind);
  if (!raw.ok()) return raw.status().WithContext(path);
  return raw;
}

Status WriteSignedFile(const std::string& path, std::string_view kind, ByteSpan bytes, bool armor) {
  if (!armor) return WriteFileAtomic(path, bytes, 0600);
  return WriteFileAtomic(path, AsBytes(Armor(kind, bytes)), 0600);
}

Result<Certificate> LoadCertificate(const std::string& request,
                                    const std::vector<std::string>& approvals) {
  QV_ASSIGN_OR_RETURN(Bytes bytes, ReadSignedFile(request, kArmorRequest));
  auto sr = SignedRequest::Parse(bytes);
  if (!sr.ok()) return sr.status().WithContext(request);
  Certificate cert{*sr, {}};
  for (const auto& f : approvals) {
    QV_ASSIGN_OR_RETURN(Bytes ab, ReadSignedFile(f, kArmorApproval));
    auto ap = Approval::Parse(ab);
    if (!ap.ok()) return ap.status().WithContext(f);
    cert.approvals.push_back(std::move(ap).value());
  }
  return cert;
}

Result<int64_t> ParseDuration(const std::string& text) {
  if (text.empty()) return InvalidArgument("empty duration");
  size_t pos = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &pos);
  } catch (...) {
    return InvalidArgument("duration '" + text + "' is not a number");
  }
  const std::string unit = text.substr(pos);
  int64_t mul = 0;
  if (unit == "s" || unit.empty()) mul = 1;
  if (unit == "m") mul = 60;
  if (unit == "h") mul = 3600;
  if (unit == "d") mul = 86400;
  if (mul == 0 || v <= 0)
    return InvalidArgument("duration '" + text + "': use e.g. 90s, 30m, 4h, 1d");
  if (v > 3650LL * 86400 / mul) return InvalidArgument("duration '" + text + "': over 10 years");
  return int64_t{v} * mul;
}

Status LocalOrCluster(const std::string& local, const std::string& cluster) {
  if (local.empty() == cluster.empty()) {
    return InvalidArgument("give exactly one of --local DIR or --cluster FILE");
  }
  return Status::Ok();
}

}  // namespace qv
