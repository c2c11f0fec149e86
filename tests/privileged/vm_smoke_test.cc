// Proves the test VM is what the privileged tests assume: root, cgroup v2 alone
// with the controllers, limits that the kernel enforces.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>

#include "support/privileged.h"

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void put(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  out << value;
  out.close();
  ASSERT_TRUE(out.good()) << "write " << value << " to " << path;
}

class CgroupSmoke : public ::testing::Test {
 protected:
  void SetUp() override {
    KERNELET_REQUIRE_PRIVILEGED();
    dir_ = "/sys/fs/cgroup/kernelet-smoke-" + std::to_string(::getpid());
    put("/sys/fs/cgroup/cgroup.subtree_control", "+memory +pids +cpu");
    ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0) << dir_ << ": " << strerror(errno);
  }
  void TearDown() override {
    if (!dir_.empty()) {
      ::rmdir(dir_.c_str());
    }
  }
  std::string dir_;
};

TEST_F(CgroupSmoke, ControllersAndLimitsAreThere) {
  std::string controllers = slurp(dir_ + "/cgroup.controllers");
  for (const char* c : {"cpu", "memory", "pids"}) {
    EXPECT_NE(controllers.find(c), std::string::npos) << "missing " << c << " in " << controllers;
  }
  put(dir_ + "/memory.max", "67108864");
  EXPECT_EQ(slurp(dir_ + "/memory.max"), "67108864\n");
  put(dir_ + "/pids.max", "4");
  EXPECT_EQ(slurp(dir_ + "/pids.max"), "4\n");
}

TEST_F(CgroupSmoke, ForkFailsOverPidsMax) {
  put(dir_ + "/pids.max", "3");
  // The child joins the group, then tries to fork 5 more; its own process counts.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::ofstream(dir_ + "/cgroup.procs") << ::getpid();
    int forked = 0;
    int err = 0;
    for (int i = 0; i < 5; i++) {
      pid_t p = ::fork();
      if (p == 0) {
        ::pause();
        ::_exit(0);
      }
      if (p < 0) {
        err = errno;
        break;
      }
      forked++;
    }
    // Report how many forks succeeded before EAGAIN; 100 means no EAGAIN at all.
    ::_exit(err == EAGAIN ? forked : 100);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  // 3 pids allowed: the child plus 2 grandchildren; the third fork gets EAGAIN.
  EXPECT_EQ(WEXITSTATUS(status), 2);
  // The grandchildren were left paused: kill everything in the group.
  put(dir_ + "/cgroup.kill", "1");
  for (int i = 0;
       i < 100 && slurp(dir_ + "/cgroup.events").find("populated 1") != std::string::npos; i++) {
    ::usleep(10000);
  }
}

}  // namespace
