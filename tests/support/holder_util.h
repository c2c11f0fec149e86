#pragma once
// What the holder tests share: a holder on a socket in a temp dir that the
// test stops at its end, and a child process standing in for a container.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "agent/runtime/holder_keeper.h"
#include "support/temp_dir.h"
#include "sys/syscalls.h"

namespace kernelet::testing {

// Field 22 of /proc/PID/stat: the start time the holder checks.
inline uint64_t procStartTime(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  for (int i = 3; i <= 22 && fields >> f; i++) {
  }
  return std::stoull(f);
}

// Waits (bounded) until `pidfd`'s process has exited.
inline bool awaitExit(int pidfd, int ms = 10000) {
  pollfd p{.fd = pidfd, .events = POLLIN};
  return ::poll(&p, 1, ms) == 1;
}

// Holders started through HolderKeeper on a socket in a temp dir; each is
// killed (by its pid, awaited by pidfd) when the fixture ends.
class HolderFixture : public ::testing::Test {
 protected:
  std::string socket() const { return dir_.path() + "/holder.sock"; }
  std::unique_ptr<agent::runtime::HolderKeeper> connect() {
    auto k = agent::runtime::HolderKeeper::connect(socket(), KERNELET_HOLDER_BINARY);
    EXPECT_TRUE(k) << k.error().message();
    if (!k) {
      return nullptr;
    }
    track((*k)->holderPid());
    return std::move(*k);
  }
  void track(int pid) {
    for (int known : holders_) {
      if (known == pid) {
        return;
      }
    }
    holders_.push_back(pid);
  }
  // Kills a holder (one this test started) and waits until it is gone.
  static void killHolder(int pid) {
    int fd = sys::pidfdOpen(pid);
    if (fd < 0) {
      return;
    }
    (void)sys::pidfdSendSignal(fd, SIGKILL);
    awaitExit(fd);
    ::close(fd);
  }
  void TearDown() override {
    for (int pid : holders_) {
      killHolder(pid);
    }
  }
  TempDir dir_;
  std::vector<int> holders_;
};

}  // namespace kernelet::testing
