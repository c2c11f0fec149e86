#include "sys/open_files.h"

namespace kernelet {

namespace {
std::optional<rlimit> original;
}

Result<void> raiseOpenFileLimit() {
  rlimit now{};
  if (::getrlimit(RLIMIT_NOFILE, &now) != 0) {
    return sysError("getrlimit RLIMIT_NOFILE");
  }
  if (!original) {
    original = now;
  }
  if (now.rlim_cur == now.rlim_max) {
    return {};
  }
  rlimit raised{now.rlim_max, now.rlim_max};
  if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    return sysError("setrlimit RLIMIT_NOFILE");
  }
  return {};
}

std::optional<rlimit> originalOpenFileLimit() { return original; }

}  // namespace kernelet
