// What the holder refuses and what the keeper checks (the security review of
// issue 16): the socket's directory must be ours and not a symlink, the lock
// file is not followed through a symlink, too low an fd limit that cannot be
// raised stops the holder at start rather than at some KEEP, and the keeper talks only to a
// holder running as root (or as itself).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "holder/protocol.h"
#include "support/holder_util.h"

namespace kernelet::testing {
namespace {

using agent::runtime::HolderKeeper;

class HolderHardeningTest : public HolderFixture {
 protected:
  // Runs the holder on `socket_path` (stderr to /dev/null) until it exits or
  // serves: its exit status, or -1 once it wrote to its ready fd (then it is
  // tracked and killed at the end). `nofile_hard` > 0 lowers RLIMIT_NOFILE first.
  int runHolder(const std::string& socket_path, rlim_t nofile_hard = 0) {
    int ready[2];
    EXPECT_EQ(::pipe2(ready, O_CLOEXEC), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      // Without CAP_SYS_RESOURCE (dropped from the bounding set, so root
      // lacks it after exec too) the holder cannot raise the hard limit.
      rlimit rl{.rlim_cur = nofile_hard, .rlim_max = nofile_hard};
      if (nofile_hard > 0 && (::prctl(PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0) != 0 ||
                              ::setrlimit(RLIMIT_NOFILE, &rl) != 0)) {
        ::_exit(126);
      }
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 2);
      ::dup2(ready[1], 3);
      ::execl(KERNELET_HOLDER_BINARY, "kernelet-holder", "--ready-fd", "3", socket_path.c_str(),
              nullptr);
      ::_exit(127);
    }
    ::close(ready[1]);
    char c = 0;
    bool served = ::read(ready[0], &c, 1) == 1;
    ::close(ready[0]);
    if (served) {
      track(pid);
      return -1;
    }
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
};

TEST_F(HolderHardeningTest, ASymlinkedSocketDirectoryIsRefused) {
  std::filesystem::create_directory(dir_.path() + "/real");
  std::filesystem::create_directory_symlink(dir_.path() + "/real", dir_.path() + "/link");
  EXPECT_EQ(runHolder(dir_.path() + "/link/holder.sock"), 1);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/real/holder.sock"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/real/holder.sock.lock"));
}

TEST_F(HolderHardeningTest, ASocketDirectoryOfAnotherUserIsRefused) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to give a directory away";
  }
  std::string other = dir_.path() + "/other";
  ASSERT_EQ(::mkdir(other.c_str(), 0700), 0);
  ASSERT_EQ(::chown(other.c_str(), 65534, 65534), 0);
  EXPECT_EQ(runHolder(other + "/holder.sock"), 1);
  EXPECT_FALSE(std::filesystem::exists(other + "/holder.sock"));
}

TEST_F(HolderHardeningTest, TheSocketDirectoryIsMadeOrTightenedTo0700) {
  std::string made = dir_.path() + "/holder";
  EXPECT_EQ(runHolder(made + "/holder.sock"), -1);
  struct stat st {};
  ASSERT_EQ(::stat(made.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  std::string loose = dir_.path() + "/loose";
  ASSERT_EQ(::mkdir(loose.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(loose.c_str(), 0755), 0);  // whatever the umask
  EXPECT_EQ(runHolder(loose + "/holder.sock"), -1);
  ASSERT_EQ(::stat(loose.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(HolderHardeningTest, TheLockFileIsNotFollowedThroughASymlink) {
  std::string target = dir_.path() + "/elsewhere";
  ASSERT_EQ(::symlink(target.c_str(), (socket() + ".lock").c_str()), 0);
  EXPECT_EQ(runHolder(socket()), 1);
  EXPECT_FALSE(std::filesystem::exists(target)) << "the holder created the symlink's target";
}

TEST_F(HolderHardeningTest, TooFewFdsStopTheHolderAtStart) {
  int status = runHolder(socket(), KH_MAX_FDS);
  if (status == 126) {
    GTEST_SKIP() << "cannot drop CAP_SYS_RESOURCE here";
  }
  EXPECT_EQ(status, 1);
  EXPECT_FALSE(std::filesystem::exists(socket()));
}

// A server on the socket that listened as another user (nobody): the keeper
// refuses it before saying a word.
TEST_F(HolderHardeningTest, TheKeeperRefusesAHolderNotRunningAsRoot) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to listen as another user";
  }
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    sockaddr_un sa{.sun_family = AF_UNIX};
    std::strncpy(sa.sun_path, socket().c_str(), sizeof sa.sun_path - 1);
    int s = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
    if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0 ||
        ::listen(s, 4) != 0 || ::write(ready[1], "r", 1) != 1) {
      ::_exit(1);
    }
    for (;;) {
      int c = ::accept(s, nullptr, nullptr);
      char buf[64];
      while (c >= 0 && ::read(c, buf, sizeof buf) > 0) {
      }
      ::close(c);
    }
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  auto k = HolderKeeper::connect(socket(), dir_.path() + "/no-holder-to-start");
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message().find("uid 65534"), std::string::npos) << k.error().message();
}

TEST(DefaultHolderPath, IsBesideTheInstalledBinaryOrEmpty) {
  std::string path = agent::runtime::defaultHolderPath();
  EXPECT_NE(path, "/kernelet-holder");
  if (!path.empty()) {
    EXPECT_TRUE(path.ends_with("/kernelet-holder")) << path;
  }
}

}  // namespace
}  // namespace kernelet::testing
