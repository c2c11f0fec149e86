#include "sys/result.h"

#include <cstring>

namespace kernelet {

std::string Error::message() const {
  std::string out = context;
  out += op;
  if (!path.empty()) {
    out += " `" + path + "`";
  }
  if (errnum != 0) {
    out += ": ";
    out += std::strerror(errnum);
  }
  if (!detail.empty()) {
    out += ": " + detail;
  }
  for (const std::string& c : cleanup) {
    out += " (cleanup: " + c + ")";
  }
  return out;
}

std::unexpected<Error> sysError(std::string op, std::string path) {
  return sysError(errno, std::move(op), std::move(path));
}

std::unexpected<Error> sysError(int errnum, std::string op, std::string path) {
  return std::unexpected(Error{.errnum = errnum, .op = std::move(op), .path = std::move(path)});
}

std::unexpected<Error> makeError(std::string op, std::string path, std::string what) {
  return std::unexpected(
      Error{.op = std::move(op), .path = std::move(path), .detail = std::move(what)});
}

Error withContext(Error e, const std::string& what) {
  e.context = what + ": " + e.context;
  return e;
}

}  // namespace kernelet
