// The sealed copy a container-starting kernelet runs from (sys/sealed_exe.h):
// this test binary re-executes itself through it and looks at itself.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "sys/sealed_exe.h"

namespace kernelet::sys {
namespace {

constexpr const char* kMarker = "KERNELET_SEALED_EXE_TEST_CHILD";

// In the re-executed copy: 0 when it runs from a sealed memfd that refuses
// every way of changing it, else a code naming what did not hold.
int checkSelf() {
  if (!runningFromSealedCopy()) {
    return 10;
  }
  std::string exe = std::filesystem::read_symlink("/proc/self/exe");
  if (!exe.starts_with("/memfd:kernelet")) {
    return 11;
  }
  int fd = ::open("/proc/self/exe", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    bool changed = ::write(fd, "x", 1) == 1 || ::ftruncate(fd, 0) == 0;
    ::close(fd);
    if (changed) {
      return 12;
    }
  }
  return 0;
}

TEST(SealedExe, ReexecRunsFromASealedCopyNoOneCanWrite) {
  if (::getenv(kMarker) != nullptr) {
    ::_exit(checkSelf());
  }
  EXPECT_FALSE(runningFromSealedCopy()) << "the test binary is a plain file";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv(kMarker, "1", 1);
    std::string self = std::filesystem::read_symlink("/proc/self/exe");
    std::string filter = "--gtest_filter=SealedExe.ReexecRunsFromASealedCopyNoOneCanWrite";
    char* argv[] = {self.data(), filter.data(), nullptr};
    reexecFromSealedCopy(argv, environ);
    ::_exit(20);  // reexec returned: it failed
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: not sealed, 11: not a memfd, 12: writable, 20: no exec";
}

}  // namespace
}  // namespace kernelet::sys
