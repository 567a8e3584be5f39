// Status and Result<T>: how errors cross module boundaries in quorumvault.
//
// A Status is either OK or carries a code and a message naming what was wrong
// ("fragment 3: unit 17 does not match its Merkle leaf"). Result<T> holds a T
// or a non-OK Status. Both are cheap value types, safe to copy between
// threads. Exceptions never cross a module boundary; callers check ok().
#ifndef QV_BASE_STATUS_H_
#define QV_BASE_STATUS_H_

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace qv {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input from the caller or the user
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       // refusing to overwrite
  kPermissionDenied,    // file modes, identities, policy
  kUnauthenticated,     // signature, MAC or commitment check failed
  kCorruption,          // stored data fails its integrity check
  kFailedPrecondition,  // not enough good fragments or shares, wrong state
  kIoError,             // the operating system said no
  kInternal,            // a library call failed unexpectedly
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corruption: fragment 3 ..." or "ok".
  std::string ToString() const;

  // Returns a copy whose message is "context: message"; OK stays OK.
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status PermissionDenied(std::string m) {
  return {StatusCode::kPermissionDenied, std::move(m)};
}
inline Status Unauthenticated(std::string m) {
  return {StatusCode::kUnauthenticated, std::move(m)};
}
inline Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// IoError naming `what` and the current errno.
Status ErrnoError(std::string_view what);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace qv

#define QV_CONCAT_INNER_(a, b) a##b
#define QV_CONCAT_(a, b) QV_CONCAT_INNER_(a, b)

#define QV_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::qv::Status qv_status_ = (expr);        \
    if (!qv_status_.ok()) return qv_status_; \
  } while (0)

#define QV_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

#define QV_ASSIGN_OR_RETURN(lhs, expr) \
  QV_ASSIGN_OR_RETURN_IMPL_(QV_CONCAT_(qv_result_, __LINE__), lhs, expr)

#endif  // QV_BASE_STATUS_H_
