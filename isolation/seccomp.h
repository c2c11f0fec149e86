#pragma once
// Seccomp profiles -> a BPF program, compiled with libseccomp in the parent so
// the container's child side only has to hand it to the kernel.

#include <linux/filter.h>

#include <string>
#include <vector>

#include "isolation/container_spec.h"
#include "sys/result.h"

namespace kernelet::isolation {

struct SeccompProgram {
  std::vector<sock_filter> filter;  // empty: unconfined
};

// Compiles RuntimeDefault (the profile in seccomp_default.json), Unconfined, or a
// profile in the OCI linux.seccomp or Docker JSON format. Rules whose includes or
// excludes name capabilities are kept or dropped by `bounding_caps`, the
// container's capability set. Unknown fields, actions or operators are errors
// that name the field.
Result<SeccompProgram> compileSeccomp(const SeccompProfile& profile,
                                      const std::vector<std::string>& bounding_caps);

// The RuntimeDefault profile's JSON text (built into the binary).
const std::string& runtimeDefaultSeccompJson();

}  // namespace kernelet::isolation
