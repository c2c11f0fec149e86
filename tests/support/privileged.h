#pragma once
// Privileged tests need root and a cgroup v2 hierarchy with the cpu, memory and
// pids controllers. On these hybrid-cgroup hosts they skip with the reason; in
// the test VM (KERNELET_TEST_VM=1, set by scripts/vm-run) a missing feature is a
// failure, so a VM that silently fell back to the host's cgroups cannot pass.

#include <gtest/gtest.h>

#include <string>

namespace kernelet::testing {

// Empty when this machine can run privileged tests, else why not.
std::string privilegedUnavailableReason();
bool inTestVm();

}  // namespace kernelet::testing

#define KERNELET_REQUIRE_PRIVILEGED()                                                         \
  do {                                                                                        \
    std::string why = ::kernelet::testing::privilegedUnavailableReason();                     \
    if (!why.empty()) {                                                                       \
      if (::kernelet::testing::inTestVm()) {                                                  \
        FAIL() << "the test VM must provide this: " << why;                                   \
      }                                                                                       \
      GTEST_SKIP() << why << " (runs in the test VM: scripts/vm-run -- ctest -L privileged)"; \
    }                                                                                         \
  } while (0)
