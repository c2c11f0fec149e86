#pragma once
// Errors are values on the setup path: every fallible step returns Result<T>,
// and the Error names the operation and the path in crun's form:
//   mount `/var/lib/kernelet/.../rootfs`: Operation not permitted
// Context is prepended as the error travels up; cleanup failures ride along in
// `cleanup` instead of replacing the original error.

#include <cerrno>
#include <expected>
#include <string>
#include <utility>
#include <vector>

namespace kernelet {

struct Error {
  int errnum = 0;                    // errno, or 0 when the failure is not a syscall's
  std::string op;                    // what we tried: "mount", "open", "parse"
  std::string path;                  // what we tried it on, may be empty
  std::string detail;                // the explanation when there is no errno
  std::string context;               // outer steps, "start container app: "
  std::vector<std::string> cleanup;  // failures while undoing, reported beside

  // The whole message, e.g. "start container: open `/x`: No such file or directory".
  std::string message() const;
};

// [[nodiscard]]: an ignored error does not compile. Where dropping one is
// right (best-effort cleanup after another error), say so with `(void)` and a
// comment why.
template <typename T>
class [[nodiscard]] Result : public std::expected<T, Error> {
 public:
  using std::expected<T, Error>::expected;
  // NOLINTNEXTLINE(google-explicit-constructor): a Result is its std::expected
  Result(std::expected<T, Error> e) : std::expected<T, Error>(std::move(e)) {}
};

// A failed syscall: takes errno now, before anything can overwrite it.
std::unexpected<Error> sysError(std::string op, std::string path = {});
// The same with an explicit errno (e.g. a negative return of a library call).
std::unexpected<Error> sysError(int errnum, std::string op, std::string path = {});
// A failure that is not an errno: bad input, a broken invariant of the input.
std::unexpected<Error> makeError(std::string op, std::string path, std::string what);

// Prepends "what: " to an error's context; use on the way up.
Error withContext(Error e, const std::string& what);

template <typename T>
Result<T> addContext(Result<T> r, const std::string& what) {
  if (!r) {
    return std::unexpected(withContext(std::move(r.error()), what));
  }
  return r;
}

}  // namespace kernelet

// Propagates an error: `TRY(auto fd, openAt(...));` or `TRY_VOID(step());`.
#define KERNELET_CONCAT_INNER(a, b) a##b
#define KERNELET_CONCAT(a, b) KERNELET_CONCAT_INNER(a, b)
#define TRY_IMPL(tmp, decl, expr)                   \
  auto tmp = (expr);                                \
  if (!tmp) {                                       \
    return std::unexpected(std::move(tmp.error())); \
  }                                                 \
  decl = std::move(*tmp)
#define TRY(decl, expr) TRY_IMPL(KERNELET_CONCAT(try_result_, __LINE__), decl, expr)
#define TRY_VOID(expr)                                            \
  do {                                                            \
    auto try_void_result = (expr);                                \
    if (!try_void_result) {                                       \
      return std::unexpected(std::move(try_void_result.error())); \
    }                                                             \
  } while (0)
