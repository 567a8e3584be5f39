// A prepared SQLite statement owned for one scope: binds by position and
// reads columns. Shared by the node's metadata store and its audit log. Not
// thread-safe; callers hold their database's lock while using one.
#ifndef QV_NODE_SQLITE_STMT_H_
#define QV_NODE_SQLITE_STMT_H_

#include <sqlite3.h>

#include <array>
#include <cstring>
#include <string>

#include "base/bytes.h"
#include "base/status.h"

namespace qv {

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  sqlite3_stmt* get() { return s_; }
  bool ok() const { return s_ != nullptr; }
  void Text(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.c_str(), -1, SQLITE_TRANSIENT);
  }
  void Int(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void Blob(int i, ByteSpan b) {
    sqlite3_bind_blob(s_, i, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
  }
  std::string ColText(int c) {
    auto p = sqlite3_column_text(s_, c);
    return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
  }
  // A blob of exactly N bytes; any other size (a hand-edited row) reads as
  // zeros, so integrity checks downstream name the row instead of this code
  // trusting its length.
  Bytes ColBlob(int c) {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s_, c));
    return p == nullptr ? Bytes() : Bytes(p, p + sqlite3_column_bytes(s_, c));
  }
  template <size_t N>
  std::array<uint8_t, N> ColFixed(int c) {
    std::array<uint8_t, N> a{};
    const void* p = sqlite3_column_blob(s_, c);
    if (p != nullptr && sqlite3_column_bytes(s_, c) == static_cast<int>(N)) {
      std::memcpy(a.data(), p, N);
    }
    return a;
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};

// An error naming what was being done and SQLite's reason.
inline Status SqlError(sqlite3* db, const std::string& what) {
  return IoError("metadata database: " + what + ": " + sqlite3_errmsg(db));
}

}  // namespace qv

#endif  // QV_NODE_SQLITE_STMT_H_
