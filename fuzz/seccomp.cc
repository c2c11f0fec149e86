// Seccomp profiles in the OCI linux.seccomp or Docker JSON form (a pod's
// Localhost profile, a bundle's config.json), compiled to BPF.

#include "isolation/seccomp.h"

#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kernelet::isolation::SeccompProfile;
  SeccompProfile profile{.kind = SeccompProfile::Kind::kJson,
                         .json = std::string(reinterpret_cast<const char*>(data), size),
                         .origin = "fuzz.json"};
  // The default container capabilities plus one that profiles test for, so
  // rules with includes/excludes by capability go both ways.
  static const std::vector<std::string> caps = {
      "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FOWNER",  "CAP_FSETID",           "CAP_KILL",
      "CAP_SETGID", "CAP_SETUID",       "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_MKNOD",  "CAP_AUDIT_WRITE",  "CAP_SETFCAP", "CAP_SYS_ADMIN"};
  auto program = kernelet::isolation::compileSeccomp(profile, caps);
  (void)program;
  return 0;
}
