// The sealed copy a container-starting kernelet runs from (sys/sealed_exe.h):
// this test binary re-executes itself through it and looks at itself.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "support/temp_dir.h"
#include "sys/sealed_exe.h"

namespace kernelet::sys {
namespace {

constexpr const char* kMarker = "KERNELET_SEALED_EXE_TEST_CHILD";
constexpr const char* kUnnamedMarker = "KERNELET_SEALED_EXE_TEST_UNNAMED";
constexpr const char* kOriginMarker = "KERNELET_SEALED_EXE_TEST_ORIGIN";

// In the re-executed copy: 0 when it runs from a sealed memfd that refuses
// every way of changing it, else a code naming what did not hold.
int checkSelf() {
  if (!runningFromSealedCopy()) {
    return 10;
  }
  std::string exe = std::filesystem::read_symlink("/proc/self/exe");
  const char* dir = ::getenv(kUnnamedMarker);
  // The memfd, or the unnamed file in the directory the test gave.
  if (dir == nullptr ? !exe.starts_with("/memfd:kernelet")
                     : !exe.starts_with(std::string(dir) + "/#") || !exe.ends_with(" (deleted)")) {
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
  // The copy still knows the file it was made from (to find the holder beside it).
  const char* origin = ::getenv(kOriginMarker);
  if (origin == nullptr || installedExe() != origin) {
    return 13;
  }
  return 0;
}

// Re-executes this test binary through a copy made as `options` say and
// returns the exit status of checkSelf() there.
int reexecAndCheck(const std::string& test, const CopyOptions& options, const char* unnamed_dir) {
  pid_t pid = ::fork();
  if (pid < 0) {
    return -1;
  }
  if (pid == 0) {
    ::setenv(kMarker, "1", 1);
    if (unnamed_dir != nullptr) {
      ::setenv(kUnnamedMarker, unnamed_dir, 1);
    }
    std::string self = std::filesystem::read_symlink("/proc/self/exe");
    ::setenv(kOriginMarker, self.c_str(), 1);
    ::setenv(kInstalledExeEnv, "/somewhere/else", 1);  // replaced by the real path
    std::string filter = "--gtest_filter=SealedExe." + test;
    char* argv[] = {self.data(), filter.data(), nullptr};
    reexecFromSealedCopy(argv, environ, options);
    ::_exit(20);  // reexec returned: it failed
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
    return -1;
  }
  return WEXITSTATUS(status);
}

TEST(SealedExe, ReexecRunsFromASealedCopyNoOneCanWrite) {
  if (::getenv(kMarker) != nullptr) {
    ::_exit(checkSelf());
  }
  EXPECT_FALSE(runningFromSealedCopy()) << "the test binary is a plain file";
  int probe = ::memfd_create("probe", MFD_CLOEXEC | 0x0010U /* MFD_EXEC */);
  if (probe < 0 && errno == EACCES) {
    GTEST_SKIP() << "vm.memfd_noexec=2: no executable memfd here (the fallback is tested below)";
  }
  if (probe >= 0) {
    ::close(probe);
  }
  EXPECT_EQ(reexecAndCheck("ReexecRunsFromASealedCopyNoOneCanWrite", {}, nullptr), 0)
      << "10: not sealed, 11: not a memfd, 12: writable, 13: installed path lost, 20: no exec";
}

// Where vm.memfd_noexec=2 refuses an executable memfd (forced here with
// memfd = false): an unnamed file, read-only, never the host binary.
TEST(SealedExe, WithoutAMemfdTheCopyIsAnUnnamedReadOnlyFile) {
  kernelet::testing::TempDir dir;
  auto copy = copyOfSelf({.memfd = false, .tmpfile_dirs = {"/nonexistent", dir.path()}});
  ASSERT_TRUE(copy) << copy.error().message();
  struct stat st {};
  ASSERT_EQ(::fstat(copy->get(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_nlink, 0U) << "the copy has a name";
  EXPECT_EQ(st.st_mode & 07777, 0500U);
  EXPECT_EQ(::fcntl(copy->get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  std::string link = std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(copy->get()));
  EXPECT_TRUE(link.starts_with(dir.path() + "/#")) << link;
  // O_EXCL: not even linkat through /proc can give it a name later.
  std::string name = dir.path() + "/named";
  EXPECT_NE(::linkat(AT_FDCWD, ("/proc/self/fd/" + std::to_string(copy->get())).c_str(), AT_FDCWD,
                     name.c_str(), AT_SYMLINK_FOLLOW),
            0);
  // The bytes are the binary's (up to its last loaded segment).
  std::ifstream host("/proc/self/exe", std::ios::binary);
  std::ifstream ours("/proc/self/fd/" + std::to_string(copy->get()), std::ios::binary);
  std::string a((std::istreambuf_iterator<char>(host)), {});
  std::string b((std::istreambuf_iterator<char>(ours)), {});
  ASSERT_FALSE(b.empty());
  EXPECT_LE(b.size(), a.size());
  EXPECT_TRUE(a.compare(0, b.size(), b) == 0) << "the copy differs from the binary";
}

TEST(SealedExe, ReexecThroughTheUnnamedCopyRunsFromIt) {
  if (::getenv(kMarker) != nullptr) {
    ::_exit(checkSelf());
  }
  kernelet::testing::TempDir dir;
  EXPECT_EQ(reexecAndCheck("ReexecThroughTheUnnamedCopyRunsFromIt",
                           {.memfd = false, .tmpfile_dirs = {dir.path()}}, dir.path().c_str()),
            0)
      << "10: not recognised as a copy, 11: not the unnamed file, 12: writable, 13: installed "
         "path lost, 20: no exec";
}

TEST(SealedExe, NoPlaceForACopyIsAnErrorNamingEachTried) {
  auto copy = copyOfSelf({.memfd = false, .tmpfile_dirs = {"/nonexistent-a", "/nonexistent-b"}});
  ASSERT_FALSE(copy);
  EXPECT_EQ(copy.error().message(),
            "copy `/proc/self/exe`: no unnamed copy either: statfs `/nonexistent-a`: No such "
            "file or directory; statfs `/nonexistent-b`: No such file or directory");
}

}  // namespace
}  // namespace kernelet::sys
