#include "isolation/sysctl.h"

#include <array>
#include <string_view>

namespace kernelet::isolation {

namespace {

// System V IPC limits, kept per IPC namespace (ipc_namespace.c); runc's list.
constexpr std::array<std::string_view, 8> kIpcSysctls = {
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
    "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
};

bool wellFormed(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.back() == '.') {
    return false;
  }
  for (size_t i = 0; i < name.size(); i++) {
    char c = name[i];
    if (c == '/' || c == '\0' || (c == '.' && name[i + 1] == '.')) {
      return false;
    }
  }
  return true;
}

}  // namespace

Result<void> validateSysctl(const std::string& name, bool private_net, bool private_uts,
                            bool private_ipc) {
  if (!wellFormed(name)) {
    return makeError("sysctl", name, "not a valid sysctl name");
  }
  bool ipc = name.starts_with("fs.mqueue.");
  for (std::string_view s : kIpcSysctls) {
    ipc = ipc || name == s;
  }
  if (ipc) {
    if (!private_ipc) {
      return makeError("sysctl", name, "needs a private IPC namespace");
    }
    return {};
  }
  if (name.starts_with("net.")) {
    if (!private_net) {
      return makeError("sysctl", name, "needs a private network namespace");
    }
    return {};
  }
  if (name == "kernel.hostname" || name == "kernel.domainname") {
    if (!private_uts) {
      return makeError("sysctl", name, "needs a private UTS namespace");
    }
    return {};
  }
  return makeError("sysctl", name, "not a namespaced sysctl");
}

}  // namespace kernelet::isolation
