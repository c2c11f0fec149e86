// System call wrappers of sys/syscalls.h whose effect a test can observe.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "sys/syscalls.h"

namespace kernelet::sys {
namespace {

// The thread's blocked signals as the kernel reports them (hex, one bit per signal).
std::string blockedSignals() {
  std::ifstream in("/proc/thread-self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("SigBlk:")) {
      return line.substr(line.find_first_not_of(" \t", 7));
    }
  }
  return "";
}

// Around clone3 nothing may be delivered, glibc's own signals 32 and 33
// (thread cancellation, set*id broadcast) included: sigfillset leaves them out.
TEST(Syscalls, BlockAllSignalsBlocksEverySignalAndRestores) {
  std::string before = blockedSignals();
  sigset_t saved;
  ASSERT_EQ(blockAllSignals(&saved), 0);
  // All 64 but SIGKILL and SIGSTOP (bits 8 and 18), which the kernel never blocks.
  EXPECT_EQ(blockedSignals(), "fffffffffffbfeff");
  ASSERT_EQ(restoreSignals(saved), 0);
  EXPECT_EQ(blockedSignals(), before);
}

}  // namespace
}  // namespace kernelet::sys
