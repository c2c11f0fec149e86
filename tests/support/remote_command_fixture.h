#pragma once
// What the tests of a remote command session (exec, attach) share: a
// FakeTransport on the test's loop, the client's streams as an SPDY client
// numbers them, the loop run until a condition, and the count of open fds.

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <memory>

#include "support/fake_transport.h"
#include "sys/unique_fd.h"

namespace kernelet::testing {

// A pty as a container's terminal: its master and its slave.
inline void openPty(UniqueFd& master, UniqueFd& slave) {
  master.reset(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(master.valid());
  ASSERT_EQ(::grantpt(master.get()), 0);
  ASSERT_EQ(::unlockpt(master.get()), 0);
  slave.reset(::open(::ptsname(master.get()), O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(slave.valid());
}

class RemoteCommandFixture : public ::testing::Test {
 protected:
  using StreamId = agent::streams::StreamId;

  static void SetUpTestSuite() {
    (void)::signal(SIGPIPE, SIG_IGN);  // as the agent: a valid signal, cannot fail
  }

  // The client's stream ids, as an SPDY client would number them.
  static constexpr StreamId kError = 1, kStdin = 3, kStdout = 5, kStderr = 7, kResize = 9;

  void openStreams(bool in, bool out, bool err, bool resize = false) {
    t_->open(kError, {.type = "error"});
    if (in) {
      t_->open(kStdin, {.type = "stdin"});
    }
    if (out) {
      t_->open(kStdout, {.type = "stdout"});
    }
    if (err) {
      t_->open(kStderr, {.type = "stderr"});
    }
    if (resize) {
      t_->open(kResize, {.type = "resize"});
    }
  }

  // Runs the loop until `pred` or 20 s (then fails). `pred` is called again
  // once it held: it must not consume what it looks at.
  template <typename Pred>
  bool runUntil(Pred pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!pred() && std::chrono::steady_clock::now() < deadline) {
      ioc_.run_one_for(std::chrono::milliseconds(100));
    }
    return pred();
  }

  static int countFds() {
    int n = 0;
    DIR* d = ::opendir("/proc/self/fd");
    while (d != nullptr && ::readdir(d) != nullptr) {
      n++;
    }
    if (d != nullptr) {
      ::closedir(d);
    }
    return n;
  }

  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
      ioc_.get_executor()};
  std::shared_ptr<FakeTransport> t_ = std::make_shared<FakeTransport>(ioc_);
};

}  // namespace kernelet::testing
